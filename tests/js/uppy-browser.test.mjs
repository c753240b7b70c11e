// Uppy (with @uppy/tus) in headless Chromium against a real tuskd, across origins; and against
// one on --auth jwt with a token in @uppy/tus's headers option.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startTuskd, sha256, download, head, servePages, launchChromium } from './harness.mjs'

const here = new URL('.', import.meta.url).pathname
const MiB = 1024 * 1024

let tuskd, secured, pages, browser, page

function bytes (size) {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 255
  return b
}

before(async () => {
  tuskd = await startTuskd()
  secured = await startTuskd([], { auth: true })
  const files = {
    '/': ['text/html', readFileSync(join(here, 'page/index.html'))],
    '/uppy.min.mjs': ['text/javascript', readFileSync(join(here, 'node_modules/uppy/dist/uppy.min.mjs'))]
  }
  pages = await servePages(files)
  // Playwright starts Chromium with a fresh temporary profile of its own.
  browser = await launchChromium()
  page = await browser.newPage()
  page.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()) })
  await page.goto(`http://127.0.0.1:${pages.address().port}/`)
  await page.waitForFunction(() => window.ready === true)
})

after(async () => {
  await browser?.close()
  pages?.close()
  await tuskd?.stop()
  await secured?.stop()
})

test('Uppy uploads a file in chunks from another origin', async () => {
  const size = 5 * MiB + 321
  const r = await page.evaluate(([e, s]) => window.uploadOnce(e, s), [tuskd.endpoint, size])
  assert.deepEqual(r.failed, [])
  assert.equal(r.urls.length, 1)
  const stored = await download(r.urls[0])
  assert.equal(sha256(stored), sha256(bytes(size)))
})

test('Uppy pauses and resumes from the server offset', async () => {
  const size = 4 * MiB
  const r = await page.evaluate(([e, s]) => window.pauseAndResume(e, s), [tuskd.endpoint, size])
  assert.deepEqual(r.failed, [])
  assert.ok(r.pausedAt >= size / 2, `paused at ${r.pausedAt}`)
  assert.ok(r.serverOffset > 0, 'the server kept bytes of the interrupted chunk or earlier chunks')
  assert.ok(r.firstPatchAfterResume >= r.serverOffset && r.firstPatchAfterResume < size,
    `resumed at ${r.firstPatchAfterResume}, server had ${r.serverOffset}`)
  const stored = await download(r.urls[0])
  assert.equal(sha256(stored), sha256(bytes(size)))
})

test('Uppy uploads with a bearer token in its tus headers to a server on --auth jwt', async () => {
  const size = 2 * MiB + 77
  const token = await secured.token({ sub: 'erin' })
  const r = await page.evaluate(([e, s, h]) => window.uploadOnce(e, s, h),
    [secured.endpoint, size, { Authorization: `Bearer ${token}` }])
  assert.deepEqual(r.failed, [])
  assert.equal(r.urls.length, 1)
  assert.equal(sha256(await download(r.urls[0], token)), sha256(bytes(size)))
  const other = await secured.token({ sub: 'frank' })
  assert.equal((await head(r.urls[0], other)).status, 404, 'another owner does not see it')

  // Without the token the server refuses the upload, and Uppy says so.
  const refused = await page.evaluate(([e, s]) => window.uploadOnce(e, s), [secured.endpoint, 1000])
  assert.equal(refused.urls.length, 0)
  assert.equal(refused.failed.length, 1)
  assert.equal(refused.statuses[0], 401, refused.failed[0])
})

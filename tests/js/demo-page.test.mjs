// The demo page (examples/web, bundled by `npm run build` there) in headless Chromium, served
// from another origin than tuskd, which runs on --auth jwt as scripts/demo.sh starts it: the
// page gets its token from the address (#token=…, as demo.sh prints it) and sends it with
// every request to tuskd (tus, the media status, hls.js's playlists and segments, the pictures).
// A 1080p video and a JPEG go through Uppy's Dashboard, the page shows their processing to
// READY (the status pushed as events, read with fetch), the video plays through hls.js, the picture's variants are shown. A screenshot of the
// finished page goes to target/demo-page.png. Then a reload in the middle of an upload: Golden
// Retriever brings the file back (and the tab still has the token) and tus goes on from the
// server's offset; the random bytes are rejected, with the reason on the page. Last, the page
// without a token against a server on --auth none: no Authorization header at all.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { extname, join, resolve } from 'node:path'
import { startTuskd, bearer, launchChromium } from './harness.mjs'

const here = new URL('.', import.meta.url).pathname
const web = resolve(here, '../../examples/web')
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' }

let tuskd, token, open, pages, browser, page, media

function gst (...args) {
  const r = spawnSync('gst-launch-1.0', ['-q', ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`gst-launch-1.0 ${args.join(' ')}: ${r.stderr}`)
}

before(async () => {
  assert.ok(existsSync(join(web, 'dist/main.js')), 'examples/web is built (npm run build there)')
  media = mkdtempSync(join(tmpdir(), 'tuskd-demo-'))
  // 1080p, 4 s, with sound: what a phone sends, only shorter.
  gst('videotestsrc', 'num-buffers=120', 'pattern=ball', 'background-color=0xff1e3a5f', '!', 'video/x-raw,width=1920,height=1080,framerate=30/1',
    '!', 'x264enc', 'speed-preset=ultrafast', 'bitrate=6000', '!', 'h264parse', '!', 'queue', '!',
    'mp4mux', 'name=m', '!', 'filesink', `location=${join(media, 'phone.mp4')}`,
    'audiotestsrc', 'num-buffers=180', '!', 'audioconvert', '!', 'voaacenc', '!', 'aacparse', '!', 'queue', '!', 'm.')
  gst('videotestsrc', 'num-buffers=1', 'pattern=smpte', '!', 'video/x-raw,width=1600,height=1200', '!',
    'jpegenc', '!', 'filesink', `location=${join(media, 'photo.jpg')}`)

  tuskd = await startTuskd(['--media', 'on', '--hls-segment', '2s'], { auth: true })
  token = await tuskd.token({ sub: 'demo' })
  pages = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    const file = join(web, path === '/' ? 'index.html' : path)
    if (!file.startsWith(web) || !existsSync(file)) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' })
      .end(readFileSync(file))
  })
  await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve))
  browser = await launchChromium(['--autoplay-policy=no-user-gesture-required'])
  page = await openPage(tuskd, token)
})

// The page in a browser context of its own (its own storage for Golden Retriever), pointed at
// `server`, with `withToken` in the address as scripts/demo.sh prints it. `p.sent` collects the
// requests to tuskd, `p.refused` the URLs it answered 401.
async function openPage (server, withToken) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
  const p = await context.newPage()
  p.on('console', (m) => { if (m.type() === 'error') console.error('page:', m.text()) })
  const tuskdOrigin = new URL(server.endpoint).origin
  p.sent = []
  p.refused = []
  p.on('request', (r) => { if (new URL(r.url()).origin === tuskdOrigin) p.sent.push(r) })
  p.on('response', (r) => { if (r.status() === 401) p.refused.push(r.url()) })
  const origin = `http://localhost:${pages.address().port}`
  assert.notEqual(new URL(origin).origin, tuskdOrigin, 'another origin')
  const fragment = withToken ? `#token=${withToken}` : ''
  await p.goto(`${origin}/?endpoint=${encodeURIComponent(server.endpoint)}${fragment}`)
  await p.waitForFunction(() => window.demo?.uppy)
  return p
}

// What each request but the preflights sent as Authorization, by URL path.
async function authorizations (p) {
  const real = p.sent.filter((r) => r.method() !== 'OPTIONS')
  const headers = await Promise.all(real.map((r) => r.allHeaders()))
  return real.map((r, i) => [new URL(r.url()).pathname, headers[i].authorization])
}

// Waits until every picture in the card of `name` is decoded (with a token they arrive as
// blob: URLs, fetched with it); returns their count.
async function decoded (p, name) {
  const h = await p.waitForFunction((name) => {
    const card = [...document.querySelectorAll('.card')].find((c) => c.querySelector('h3').textContent === name)
    const imgs = [...card.querySelectorAll('.gallery img')]
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0) && imgs.length
  }, name, { timeout: 30000, polling: 250 })
  return h.jsonValue()
}

after(async () => {
  await browser?.close()
  pages?.close()
  await tuskd?.stop()
  await open?.stop()
  if (media) rmSync(media, { recursive: true, force: true })
})

test('the page uploads, shows processing to READY, plays the video and shows the variants', async () => {
  assert.equal(await page.evaluate(() => MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')), true)
  await page.locator('input.uppy-Dashboard-input').first()
    .setInputFiles([join(media, 'phone.mp4'), join(media, 'photo.jpg')])
  await page.waitForFunction(() => {
    const cards = [...document.querySelectorAll('.card')]
    return cards.length === 2 && cards.every((c) => ['READY', 'REJECTED', 'FAILED'].includes(c.dataset.status))
  }, null, { timeout: 240000, polling: 500 })
  const statuses = await page.$$eval('.card', (cs) => cs.map((c) => [c.querySelector('h3').textContent, c.dataset.status, c.querySelector('.status').textContent]))
  for (const [name, status, text] of statuses) assert.equal(status, 'READY', `${name}: ${text}`)

  // The video: hls.js loaded the master playlist, listed the renditions and plays one.
  const played = await page.evaluate(async () => {
    const { video, hls, select } = window.demo.players[0]
    await video.play()
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`currentTime ${video.currentTime}`)), 60000)
      video.addEventListener('timeupdate', () => { if (video.currentTime > 2) { clearTimeout(t); resolve() } })
    })
    return {
      time: video.currentTime,
      levels: hls.levels.map((l) => l.height),
      level: hls.currentLevel,
      options: [...select.options].map((o) => o.textContent)
    }
  })
  assert.ok(played.time > 2, `played to ${played.time}`)
  assert.ok(played.levels.length >= 2, `levels ${played.levels}`)
  assert.ok(played.level >= 0, 'a rendition was chosen')
  assert.equal(played.options.length, played.levels.length + 1, `quality options ${played.options}`)

  // The picture's variants are on the page, decoded.
  const images = await decoded(page, 'photo.jpg')
  assert.ok(images >= 8, `${images} image variants`)
  await decoded(page, 'phone.mp4')

  // The token: out of the address, shown as whose it is, and on every request to tuskd (the
  // uploads, the status, hls.js's playlists and segments, the pictures); none was refused.
  assert.ok(!page.url().includes('token'), page.url())
  assert.match(await page.textContent('#who'), /uploading as demo/)
  const sent = await authorizations(page)
  for (const [path, authorization] of sent) assert.equal(authorization, `Bearer ${token}`, path)
  const paths = sent.map(([path]) => path)
  for (const want of [/^\/files\/$/, /^\/media\/[^/]+$/, /\.m3u8$/, /\.(ts|m4s|mp4)$/, /\.(webp|jpg)$/]) {
    assert.ok(paths.some((p) => want.test(p)), `a request for ${want} with the token`)
  }
  assert.deepEqual(page.refused, [])
  // The status came pushed as events: one request per upload, not a poll a second.
  const statusRequests = page.sent.filter((r) => /^\/media\/[^/]+$/.test(new URL(r.url()).pathname))
  assert.equal(statusRequests.length, 2, statusRequests.map((r) => r.url()).join(' '))
  for (const r of statusRequests) assert.equal(r.headers().accept, 'text/event-stream')
  // And tuskd does want it: without, the same status is refused.
  const status = paths.find((p) => /^\/media\/[^/]+$/.test(p))
  assert.equal((await fetch(new URL(status, tuskd.endpoint))).status, 401)

  await page.screenshot({ path: resolve(here, '../../target/demo-page.png'), fullPage: true })
})

test('a reload mid-upload resumes where the server is, and a rejection shows its reason', async () => {
  const size = 24 * 1024 * 1024
  writeFileSync(join(media, 'notes.bin'), randomBytes(size))
  const page = await openPage(tuskd, token)
  const cdp = await page.context().newCDPSession(page)
  // A slow uplink (6 MiB/s), so that the reload comes in the middle.
  await cdp.send('Network.enable')
  await cdp.send('Network.emulateNetworkConditions',
    { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 6 * 1024 * 1024 })
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles([join(media, 'notes.bin')])
  const url = await page.waitForFunction(() => {
    const f = window.demo.uppy.getFiles().find((f) => f.name === 'notes.bin')
    return f?.tus?.uploadUrl
  }, null, { polling: 100 }).then((h) => h.jsonValue())
  let offset = 0
  const deadline = Date.now() + 60000
  while (offset < size / 4) {
    assert.ok(Date.now() < deadline, `the upload got to ${offset} only`)
    const h = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...bearer(token) } })
    offset = Number(h.headers.get('upload-offset'))
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.ok(offset < size, 'still uploading when the page reloads')

  const patches = []
  page.on('request', (r) => {
    if (r.method() === 'PATCH') patches.push(Number(r.headers()['upload-offset']))
  })
  await cdp.send('Network.emulateNetworkConditions',
    { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 })
  await page.reload()
  await page.waitForFunction(() => {
    const card = [...document.querySelectorAll('.card')].find((c) => c.querySelector('h3').textContent === 'notes.bin')
    return card && ['READY', 'REJECTED', 'FAILED'].includes(card.dataset.status)
  }, null, { timeout: 60000, polling: 250 })
  assert.ok(patches.length >= 1, 'it went on after the reload')
  assert.ok(patches[0] >= offset, `resumed at ${patches[0]}, the server had ${offset}`)
  const card = await page.$$eval('.card', (cs) => {
    const c = cs.find((c) => c.querySelector('h3').textContent === 'notes.bin')
    return [c.dataset.status, c.querySelector('.status').textContent]
  })
  // Random bytes are no media: the page says why the pipeline refused them.
  assert.equal(card[0], 'REJECTED')
  assert.match(card[1], /rejected: .*\(unknown_type\)/)
  // The reload kept the token (the tab's session storage), though the address no longer has it.
  assert.deepEqual(page.refused, [])
})

test('without a token the page works with a server on --auth none, and sends no Authorization', async () => {
  open = await startTuskd(['--media', 'on', '--hls-segment', '2s'])
  const page = await openPage(open, null)
  assert.match(await page.textContent('#who'), /no token/)
  await page.locator('input.uppy-Dashboard-input').first().setInputFiles([join(media, 'photo.jpg')])
  await page.waitForFunction(() => {
    const card = document.querySelector('.card')
    return card && ['READY', 'REJECTED', 'FAILED'].includes(card.dataset.status)
  }, null, { timeout: 120000, polling: 250 })
  const [status, text] = await page.$eval('.card', (c) => [c.dataset.status, c.querySelector('.status').textContent])
  assert.equal(status, 'READY', text)
  assert.ok(await decoded(page, 'photo.jpg') >= 8)
  const sent = await authorizations(page)
  assert.ok(sent.length > 3, `${sent.length} requests`)
  for (const [path, authorization] of sent) assert.equal(authorization, undefined, path)
})

test('a 2-minute video plays while PLAYABLE, and its player goes on with every rung at READY, through the joins', async () => {
  // 720p, 2 minutes: two rungs; the first task (360p, stills, the sound) then the 720p rung in
  // chunks of 30 s joined into one playlist, the sound a rendition of its own.
  gst('videotestsrc', 'num-buffers=3600', 'pattern=ball', '!', 'video/x-raw,width=1280,height=720,framerate=30/1',
    '!', 'x264enc', 'speed-preset=ultrafast', 'bitrate=2000', '!', 'h264parse', '!', 'queue', '!',
    'mp4mux', 'name=m', '!', 'filesink', `location=${join(media, 'long.mp4')}`,
    'audiotestsrc', 'num-buffers=5625', 'samplesperbuffer=1024', '!', 'audio/x-raw,rate=48000,channels=2', '!',
    'audioconvert', '!', 'voaacenc', '!', 'aacparse', '!', 'queue', '!', 'm.')
  const p = await openPage(tuskd, token)
  await p.locator('input.uppy-Dashboard-input').first().setInputFiles([join(media, 'long.mp4')])
  const status = () => p.$eval('.card', (c) => c.dataset.status)
  await p.waitForFunction(() => ['PLAYABLE', 'READY', 'FAILED'].includes(document.querySelector('.card')?.dataset.status),
    null, { timeout: 240000, polling: 100 })
  assert.equal(await status(), 'PLAYABLE')
  // The early master, in hls.js: one rendition and the sound, playing.
  const early = await p.evaluate(async () => {
    const { video, hls } = window.demo.players.at(-1)
    video.muted = true
    await video.play()
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`currentTime ${video.currentTime}`)), 60000)
      video.addEventListener('timeupdate', () => { if (video.currentTime > 1) { clearTimeout(t); resolve() } })
    })
    return { time: video.currentTime, levels: hls.levels.map((l) => l.height), url: hls.url, audio: hls.audioTracks.length }
  })
  assert.equal(await status(), 'PLAYABLE', 'played before READY')
  assert.deepEqual(early.levels, [360])
  assert.equal(early.audio, 1, 'the sound is its own rendition')
  assert.match(early.url, /\/playable\.m3u8$/)
  // READY: the same player, now on the final master with every rung, going on from where it was.
  await p.waitForFunction(() => ['READY', 'FAILED'].includes(document.querySelector('.card')?.dataset.status),
    null, { timeout: 240000, polling: 250 })
  assert.equal(await status(), 'READY')
  const final = await p.evaluate(async (from) => {
    const { video, hls } = window.demo.players.at(-1)
    const until = (what, ok) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${what}: level ${hls.currentLevel}, currentTime ${video.currentTime}`)), 60000)
      const check = () => { if (ok()) { clearTimeout(t); resolve() } else setTimeout(check, 100) }
      check()
    })
    await until('the final master', () => hls.levels.length === 2 && video.currentTime > from + 1)
    // Each rung plays, across a join of two chunks (at 30 s and at 60 s).
    const played = []
    for (const [level, at] of [[1, 28], [0, 58]]) {
      hls.currentLevel = level
      video.currentTime = at
      await until(`rung ${level} past ${at + 3} s`, () => video.currentTime > at + 3)
      played.push({ level, height: hls.levels[hls.currentLevel].height, time: video.currentTime })
    }
    return { levels: hls.levels.map((l) => l.height), url: hls.url, played, error: video.error?.message ?? null }
  }, early.time)
  assert.deepEqual(final.levels, [360, 720])
  assert.match(final.url, /\/master\.m3u8$/)
  assert.deepEqual(final.played.map((p) => p.height), [720, 360], JSON.stringify(final.played))
  assert.equal(final.error, null)
  await p.context().close()
})

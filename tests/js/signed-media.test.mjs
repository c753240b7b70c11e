// Signed media URLs (--media-access signed) with a real player. tuskd runs on --auth jwt with a
// random signing key and a short URL lifetime; the owner uploads a short video and a small
// picture with a token and waits for both to be READY; the status document (read with the
// token) gives file URLs signed as `/media/{id}/~{expiry}.{mac}/{version}/{file}`. hls.js, in a
// page of another origin that has no token at all, plays the signed master playlist: its variant
// playlists and segments are reached through relative URLs, so they carry the signature, and
// no request the page makes has an Authorization header. With plain fetch: the URL with one
// character of the MAC changed, or with the other upload's id, is refused (403
// ERR_SIGNATURE_INVALID) while the real one still works; once it has expired the real one is
// refused too (403 ERR_SIGNATURE_EXPIRED), and hls.js can no longer load it.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as tus from 'tus-js-client'
import { startTuskd, bearer, servePages, launchChromium } from './harness.mjs'

const here = new URL('.', import.meta.url).pathname
// hls.js as the demo page bundles it (scripts/test.sh installs examples/web's packages first).
const HLS = resolve(here, '../../examples/web/node_modules/hls.js/dist/hls.min.js')
// --media-url-ttl, in seconds: long enough to play a few seconds of video, short enough to wait
// for its end.
const TTL = 20
// The file URLs of the status document: the id, the signature, then the version and the file.
const SIGNED = /^\/media\/([^/]+)\/~(\d+)\.([A-Za-z0-9_-]+)\/(.+)$/

// clip and picture: the uploads' ids (and the first test's signed master URL and what hls.js
// fetched through it).
let tuskd, token, pages, browser, media
const clip = {}
const picture = {}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function gst (...args) {
  const r = spawnSync('gst-launch-1.0', ['-q', ...args], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`gst-launch-1.0 ${args.join(' ')}: ${r.stderr}`)
}

// Uploads `file` with the owner's token; returns its upload id.
function upload (file, filename, filetype) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(readFileSync(file), {
      endpoint: tuskd.endpoint,
      headers: bearer(token),
      metadata: { filename, filetype },
      retryDelays: [0, 200, 500],
      onError: reject,
      onSuccess: () => resolve(new URL(u.url).pathname.split('/').pop())
    })
    u.start()
  })
}

// The status document of `id`, read with the owner's token.
async function status (id) {
  const res = await fetch(new URL(`/media/${id}`, tuskd.endpoint), { headers: bearer(token) })
  assert.equal(res.status, 200, `GET /media/${id}: ${await res.clone().text()}`)
  return res.json()
}

// Polls the status of `id` until the pipeline is done with it; it must be READY.
async function ready (id, timeout) {
  const deadline = Date.now() + timeout
  for (;;) {
    const doc = await status(id)
    if (['READY', 'REJECTED', 'FAILED'].includes(doc.status)) {
      assert.equal(doc.status, 'READY', JSON.stringify(doc.reason))
      return doc
    }
    assert.ok(Date.now() < deadline, `${id} still ${doc.status} (${doc.progress}%) after ${timeout} ms`)
    await sleep(250)
  }
}

// A signed file URL, in its parts (and when its signature expires, in ms).
function parts (url) {
  const u = new URL(url)
  const m = u.pathname.match(SIGNED)
  assert.ok(m, `a signed URL: ${url}`)
  const [, id, exp, mac, file] = m
  return { id, exp: Number(exp), expiresAt: Number(exp) * 1000, mac, file, origin: u.origin }
}

function signedUrl ({ origin, id, exp, mac, file }) {
  return `${origin}/media/${id}/~${exp}.${mac}/${file}`
}

// A GET with no credential: its status and the ERR_* code its body starts with.
async function get (url) {
  const res = await fetch(url)
  const body = Buffer.from(await res.arrayBuffer())
  const code = res.status === 200 ? null : body.toString().split(':')[0]
  return { status: res.status, code, body, cacheControl: res.headers.get('cache-control') }
}

// hls.js in a fresh browser context (a cache of its own) plays `url`; returns what page.play
// reports and every request the page made to tuskd: its path, Authorization and status.
async function play (url) {
  const context = await browser.newContext()
  try {
    const page = await context.newPage()
    // (The responses' statuses are checked below, so Chromium's own line for each is left out.)
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) console.error('page:', m.text())
    })
    const tuskdOrigin = new URL(tuskd.endpoint).origin
    const sent = []
    page.on('request', (r) => { if (new URL(r.url()).origin === tuskdOrigin) sent.push(r) })
    const origin = `http://localhost:${pages.address().port}`
    assert.notEqual(origin, tuskdOrigin, 'another origin')
    await page.goto(`${origin}/`)
    await page.waitForFunction(() => window.ready === true)
    const result = await page.evaluate((url) => window.play(url), url)
    const requests = await Promise.all(sent.map(async (r) => ({
      method: r.method(),
      path: new URL(r.url()).pathname,
      authorization: (await r.allHeaders()).authorization,
      status: (await r.response())?.status() ?? null
    })))
    return { ...result, requests }
  } finally {
    await context.close()
  }
}

before(async () => {
  assert.ok(existsSync(HLS), `hls.js at ${HLS} (npm install in examples/web)`)
  media = mkdtempSync(join(tmpdir(), 'tuskd-signed-'))
  const clipFile = join(media, 'clip.mp4')
  const pictureFile = join(media, 'dot.png')
  // 4 s of 640x360 with sound: two 2 s segments in one rendition, quick to transcode.
  gst('videotestsrc', 'num-buffers=120', 'pattern=ball', '!', 'video/x-raw,width=640,height=360,framerate=30/1',
    '!', 'x264enc', 'speed-preset=ultrafast', 'bitrate=800', '!', 'h264parse', '!', 'queue', '!',
    'mp4mux', 'name=m', '!', 'filesink', `location=${clipFile}`,
    'audiotestsrc', 'num-buffers=180', '!', 'audioconvert', '!', 'voaacenc', '!', 'aacparse', '!', 'queue', '!', 'm.')
  gst('videotestsrc', 'num-buffers=1', 'pattern=smpte', '!', 'video/x-raw,width=64,height=48', '!',
    'pngenc', '!', 'filesink', `location=${pictureFile}`)

  tuskd = await startTuskd(['--media', 'on', '--hls-segment', '2s', '--media-access', 'signed',
    '--media-url-ttl', `${TTL}s`], { auth: true, signingKey: true })
  token = await tuskd.token({ sub: 'signer' })

  const files = {
    '/': ['text/html', readFileSync(join(here, 'page/hls.html'))],
    '/hls.min.js': ['text/javascript', readFileSync(HLS)]
  }
  pages = await servePages(files)
  browser = await launchChromium(['--autoplay-policy=no-user-gesture-required'])

  ;[clip.id, picture.id] = await Promise.all([upload(clipFile, 'clip.mp4', 'video/mp4'), upload(pictureFile, 'dot.png', 'image/png')])
  await Promise.all([ready(clip.id, 240000), ready(picture.id, 120000)])
})

after(async () => {
  await browser?.close()
  pages?.close()
  await tuskd?.stop()
  if (media) rmSync(media, { recursive: true, force: true })
})

test('hls.js plays the signed master playlist with no token, and sends no Authorization', async () => {
  // Signed now, for TTL seconds.
  const doc = await status(clip.id)
  const asked = Date.now()
  const hls = doc.variants.filter((v) => v.kind === 'hls')
  assert.equal(hls.length, 1, JSON.stringify(doc.variants))
  clip.master = hls[0].url
  const signed = parts(clip.master)
  assert.equal(signed.id, clip.id)
  assert.match(signed.file, /^[^/]+\/master\.m3u8$/)
  assert.ok(Math.abs(signed.expiresAt - (asked + TTL * 1000)) < 3000,
    `expires at ${new Date(signed.expiresAt).toISOString()}, ${TTL} s after ${new Date(asked).toISOString()}`)
  // Every file URL of the document carries the same signature.
  for (const v of doc.variants) {
    const p = parts(v.url)
    assert.deepEqual([p.id, p.exp, p.mac], [signed.id, signed.exp, signed.mac], v.url)
  }

  const played = await play(clip.master)
  assert.ok(Date.now() < signed.expiresAt, 'played before the URL expired')
  assert.equal(played.outcome, 'played', JSON.stringify(played))
  assert.ok(played.time > 0.5, `played to ${played.time}`)
  assert.equal(played.loaded.manifests, 1)
  assert.ok(played.levels.length >= 1, `levels ${JSON.stringify(played.levels)}`)
  assert.ok(played.levels.some((l) => l.details), `a level's playlist was loaded: ${JSON.stringify(played.levels)}`)
  assert.ok(played.loaded.levels >= 1 && played.loaded.fragments >= 1, JSON.stringify(played.loaded))
  assert.deepEqual(played.errors.filter((e) => e.fatal), [])

  // What the page asked tuskd for: the master, a variant playlist, segments; all under the
  // signature, none with an Authorization header, none refused.
  const prefix = `/media/${clip.id}/~${signed.exp}.${signed.mac}/`
  const paths = played.requests.map((r) => r.path)
  clip.fetched = [...new Set(paths)]
  assert.ok(paths.includes(new URL(clip.master).pathname), `the master: ${paths}`)
  assert.ok(paths.some((p) => /\/[^/]+\/index\.m3u8$/.test(p)), `a variant playlist: ${paths}`)
  assert.ok(paths.some((p) => /\.(ts|m4s|mp4)$/.test(p)), `a segment: ${paths}`)
  for (const r of played.requests) {
    assert.ok(r.path.startsWith(prefix), `${r.path} under ${prefix}`)
    assert.equal(r.authorization, undefined, `${r.method} ${r.path} sent Authorization`)
    if (r.method !== 'OPTIONS') assert.equal(r.status, 200, `${r.method} ${r.path}`)
  }
})

test('a changed MAC or another upload\'s id is refused with ERR_SIGNATURE_INVALID', async () => {
  assert.ok(clip.master, 'the first test got a signed master URL')
  const signed = parts(clip.master)
  const pic = parts((await status(picture.id)).variants[0].url)

  // The real URLs work with no credential, the shared cache keeping them no longer than they
  // are valid.
  const ok = await get(clip.master)
  assert.equal(ok.status, 200)
  assert.match(ok.body.toString(), /^#EXTM3U/)
  const maxAge = Number(ok.cacheControl.match(/^public, max-age=(\d+), immutable$/)?.[1])
  assert.ok(maxAge > 0 && maxAge <= TTL, `Cache-Control: ${ok.cacheControl}`)
  assert.equal((await get(signedUrl(pic))).status, 200, 'the picture\'s own signed URL')

  // One character of the MAC changed (in the middle: every bit of it counts there).
  const i = Math.floor(signed.mac.length / 2)
  const mac = signed.mac.slice(0, i) + (signed.mac[i] === 'A' ? 'B' : 'A') + signed.mac.slice(i + 1)
  const changed = await get(signedUrl({ ...signed, mac }))
  assert.deepEqual([changed.status, changed.code], [403, 'ERR_SIGNATURE_INVALID'], changed.body.toString())

  // The video's signature on the picture: on its files, and with the video's path.
  for (const url of [signedUrl({ ...pic, exp: signed.exp, mac: signed.mac }), signedUrl({ ...signed, id: picture.id })]) {
    const swapped = await get(url)
    assert.deepEqual([swapped.status, swapped.code], [403, 'ERR_SIGNATURE_INVALID'], `${url}: ${swapped.body}`)
  }
  // The picture's signature on the video.
  const other = await get(signedUrl({ ...signed, exp: pic.exp, mac: pic.mac }))
  assert.deepEqual([other.status, other.code], [403, 'ERR_SIGNATURE_INVALID'], other.body.toString())

  // Those were refused for what was changed, not for the time.
  assert.ok(Date.now() < signed.expiresAt, 'still valid while the changed URLs were tried')
  assert.equal((await get(clip.master)).status, 200)
})

test('once expired the URL is refused with ERR_SIGNATURE_EXPIRED, and hls.js cannot load it', async () => {
  assert.ok(clip.master, 'the first test got a signed master URL')
  const signed = parts(clip.master)
  const deadline = signed.expiresAt + 10000
  let last
  for (;;) {
    last = await get(clip.master)
    if (last.status !== 200) break
    assert.ok(Date.now() < deadline, `still ${last.status} at ${new Date().toISOString()}, expired ${new Date(signed.expiresAt).toISOString()}`)
    await sleep(200)
  }
  // Refused at its expiry, not before.
  assert.ok(Date.now() >= signed.expiresAt, `refused at ${new Date().toISOString()}, before ${new Date(signed.expiresAt).toISOString()}`)
  assert.deepEqual([last.status, last.code], [403, 'ERR_SIGNATURE_EXPIRED'], last.body.toString())
  // The variant playlist and the segments hls.js fetched through the master, too.
  const inherited = clip.fetched.filter((p) => p !== new URL(clip.master).pathname)
  assert.ok(inherited.length >= 2, `${inherited}`)
  for (const path of inherited) {
    const r = await get(new URL(path, signed.origin))
    assert.deepEqual([r.status, r.code], [403, 'ERR_SIGNATURE_EXPIRED'], `${path}: ${r.body}`)
  }
  // A changed MAC is still invalid, not expired.
  const i = Math.floor(signed.mac.length / 2)
  const mac = signed.mac.slice(0, i) + (signed.mac[i] === 'A' ? 'B' : 'A') + signed.mac.slice(i + 1)
  const changed = await get(signedUrl({ ...signed, mac }))
  assert.deepEqual([changed.status, changed.code], [403, 'ERR_SIGNATURE_INVALID'], changed.body.toString())

  const failed = await play(clip.master)
  assert.equal(failed.outcome, 'fatal', JSON.stringify(failed))
  const fatal = failed.errors.find((e) => e.fatal)
  assert.equal(fatal.type, 'networkError', JSON.stringify(fatal))
  assert.equal(fatal.details, 'manifestLoadError', JSON.stringify(fatal))
  assert.equal(fatal.status, 403, JSON.stringify(fatal))
  assert.equal(failed.time, 0)
  assert.ok(failed.requests.length >= 1)
  for (const r of failed.requests) {
    assert.equal(r.path, new URL(clip.master).pathname)
    assert.equal(r.authorization, undefined)
    assert.equal(r.status, 403)
  }
})

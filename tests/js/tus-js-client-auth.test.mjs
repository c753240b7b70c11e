// tus-js-client (Node) against a real tuskd on --auth jwt, with tokens from `tuskd token`: an
// upload with `headers: { Authorization }`; a token refreshed per request in onBeforeRequest
// carrying an upload past the first token's expiry (the server allows no leeway here); a second
// client of the same owner resuming through the URL storage, and another owner's token finding
// no upload at that URL (404) and making its own.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tus from 'tus-js-client'
import { startTuskd, sha256, randomFile, download, head, bearer, claims } from './harness.mjs'

let server, scratch
before(async () => {
  server = await startTuskd(['--auth-jwt-leeway', '0s'], { auth: true })
  scratch = mkdtempSync(join(tmpdir(), 'tuskd-js-auth-'))
})
after(async () => {
  await server.stop()
  rmSync(scratch, { recursive: true, force: true })
})

const MiB = 1024 * 1024
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function upload (file, options) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      endpoint: server.endpoint,
      retryDelays: [0, 200, 500],
      ...options,
      onError: reject,
      onSuccess: () => resolve(u)
    })
    u.start()
  })
}

test('uploads with a bearer token; without one the server answers 401', async () => {
  const token = await server.token({ sub: 'alice' })
  const file = randomFile(3 * MiB + 5)
  const u = await upload(file, { chunkSize: MiB, headers: bearer(token), metadata: { filename: 'a.bin' } })
  assert.equal(sha256(await download(u.url, token)), sha256(file))

  const anonymous = await head(u.url)
  assert.equal(anonymous.status, 401)
  assert.match(anonymous.headers.get('www-authenticate'), /^Bearer realm="tuskd"/)
  const err = await upload(randomFile(1000), {}).then(() => null, (e) => e)
  assert.ok(err, 'an upload without a token fails')
  assert.equal(err.originalResponse?.getStatus(), 401, String(err))
})

test('a token refreshed in onBeforeRequest carries an upload past the first token\'s expiry', async () => {
  const first = await server.token({ sub: 'dave', ttl: '3s' })
  const expiresAt = claims(first).exp * 1000
  const file = randomFile(4 * MiB + 99)
  let patches = 0
  let refusedAt = null
  const afterExpiry = []
  const u = await upload(file, {
    chunkSize: 256 * 1024,
    headers: bearer(first),
    onBeforeRequest: async (req) => {
      if (req.getMethod() === 'PATCH' && ++patches === 3) {
        // Hold the third PATCH until the first token alone is refused.
        await sleep(Math.max(0, expiresAt - Date.now()))
        const deadline = Date.now() + 10000
        while ((await head(req.getURL(), first)).status !== 401) {
          assert.ok(Date.now() < deadline, 'the first token is refused once it has expired')
          await sleep(100)
        }
        refusedAt = Date.now()
      }
      // A fresh token for every request, as an app refreshing its session would send.
      const fresh = await server.token({ sub: 'dave', ttl: '3s' })
      req.setHeader('Authorization', `Bearer ${fresh}`)
      if (refusedAt !== null && req.getMethod() === 'PATCH') afterExpiry.push(fresh)
    }
  })
  assert.ok(refusedAt !== null, 'the upload was still going when the first token expired')
  assert.ok(afterExpiry.length >= 10, `${afterExpiry.length} PATCHes after the first token expired`)
  assert.ok(afterExpiry.every((t) => t !== first))
  const latest = await server.token({ sub: 'dave' })
  assert.equal(sha256(await download(u.url, latest)), sha256(file))
  const stale = await head(u.url, first)
  assert.equal(stale.status, 401)
  assert.match(stale.headers.get('www-authenticate'), /error="invalid_token"/)
})

test('the same owner resumes from a second client; another owner\'s token gets 404 there', async () => {
  const urlStorage = new tus.FileUrlStorage(join(scratch, 'uploads.json'))
  const file = randomFile(3 * MiB + 321)
  const alice = await server.token({ sub: 'alice' })
  const bob = await server.token({ sub: 'bob' })

  // Alice's first client stops after about 1 MiB.
  const url = await new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      endpoint: server.endpoint,
      chunkSize: 512 * 1024,
      retryDelays: [],
      urlStorage,
      headers: bearer(alice),
      onError: reject,
      onSuccess: () => reject(new Error('should have been interrupted')),
      onChunkComplete: (size, accepted) => {
        if (accepted >= MiB) u.abort().then(() => resolve(u.url), reject)
      }
    })
    u.start()
  })
  const offset = Number((await head(url, alice)).headers.get('upload-offset'))
  assert.ok(offset >= MiB && offset < file.length, `offset ${offset}`)

  // For Bob that upload does not exist: HEAD and PATCH answer 404, and it does not move.
  assert.equal((await head(url, bob)).status, 404)
  const patch = await fetch(url, {
    method: 'PATCH',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Offset': String(offset),
      'Content-Type': 'application/offset+octet-stream',
      ...bearer(bob)
    },
    body: file.subarray(offset, offset + 1000)
  })
  assert.equal(patch.status, 404)
  assert.equal(Number((await head(url, alice)).headers.get('upload-offset')), offset)

  // Alice's second client (a new token, the same owner) finds the upload by its fingerprint
  // and goes on from the server's offset.
  const again = await server.token({ sub: 'alice', ttl: '2h' })
  const patchOffsets = []
  const resumed = await new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      endpoint: server.endpoint,
      chunkSize: 512 * 1024,
      urlStorage,
      headers: bearer(again),
      onError: reject,
      onSuccess: () => resolve(u),
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')))
      }
    })
    u.findPreviousUploads().then((previous) => {
      assert.equal(previous.length, 1)
      assert.equal(previous[0].uploadUrl, url)
      u.resumeFromPreviousUpload(previous[0])
      u.start()
    }).catch(reject)
  })
  assert.equal(resumed.url, url)
  assert.equal(patchOffsets[0], offset, 'resumed where the server said')
  assert.equal(sha256(await download(url, again)), sha256(file))

  // Bob's client given Alice's URL: its HEAD is a 404, so tus-js-client makes a new upload.
  const bobs = await upload(file, { uploadUrl: url, chunkSize: MiB, headers: bearer(bob) })
  assert.notEqual(bobs.url, url)
  assert.equal(sha256(await download(bobs.url, bob)), sha256(file))
  assert.equal((await head(bobs.url, alice)).status, 404)
  assert.equal((await download(url, alice)).length, file.length, 'Alice\'s upload is untouched')
})

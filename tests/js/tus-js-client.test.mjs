// tus-js-client (Node) against a real tuskd: straight, interrupted-and-resumed, and parallel
// uploads of several MiB; the stored bytes must match by SHA-256.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as tus from 'tus-js-client'
import { startTuskd, sha256, randomFile, download, head } from './harness.mjs'

let server
before(async () => { server = await startTuskd() })
after(async () => { await server.stop() })

const MiB = 1024 * 1024

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

test('uploads a multi-MiB file in chunks', async () => {
  const file = randomFile(6 * MiB + 12345)
  const chunks = []
  const u = await upload(file, {
    chunkSize: 1 * MiB,
    metadata: { filename: 'clip.mp4', filetype: 'video/mp4' },
    onChunkComplete: (size, accepted) => chunks.push(accepted)
  })
  assert.equal(chunks.length, 7)
  assert.equal(chunks.at(-1), file.length)
  const stored = await download(u.url)
  assert.equal(sha256(stored), sha256(file))
  const h = await head(u.url)
  assert.equal(h.headers.get('upload-metadata'), `filename ${Buffer.from('clip.mp4').toString('base64')},filetype ${Buffer.from('video/mp4').toString('base64')}`)
})

test('an interrupted upload resumes from the server offset', async () => {
  const file = randomFile(5 * MiB + 777)
  // First attempt: abort once about 2 MiB are acknowledged, as a dropped connection would.
  const first = await new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      endpoint: server.endpoint,
      chunkSize: 512 * 1024,
      retryDelays: [],
      onError: reject,
      onSuccess: () => reject(new Error('should have been interrupted')),
      onChunkComplete: (size, accepted) => {
        if (accepted >= 2 * MiB) {
          u.abort().then(() => resolve({ url: u.url, accepted }))
        }
      }
    })
    u.start()
  })
  const h = await head(first.url)
  const serverOffset = Number(h.headers.get('upload-offset'))
  assert.ok(serverOffset >= 2 * MiB && serverOffset < file.length, `offset ${serverOffset}`)

  // Second attempt: a new client resumes the same URL; its first PATCH starts at the server's offset.
  const patchOffsets = []
  const resumed = await upload(file, {
    uploadUrl: first.url,
    chunkSize: 512 * 1024,
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')))
    }
  })
  assert.equal(resumed.url, first.url)
  assert.equal(patchOffsets[0], serverOffset, 'resumed where the server said, not from 0')
  assert.equal(sha256(await download(resumed.url)), sha256(file))
})

test('parallel uploads are concatenated in order', async () => {
  const file = randomFile(4 * MiB + 3)
  const u = await upload(file, {
    parallelUploads: 3,
    metadata: { filename: 'parallel.bin' }
  })
  const stored = await download(u.url)
  assert.equal(stored.length, file.length)
  assert.equal(sha256(stored), sha256(file))
  const h = await head(u.url)
  assert.match(h.headers.get('upload-concat'), /^final;/)
})

test('creation-with-upload and deferred length work with the real client', async () => {
  const file = randomFile(3 * MiB)
  const u = await upload(file, { chunkSize: MiB, uploadDataDuringCreation: true })
  assert.equal(sha256(await download(u.url)), sha256(file))

  // A stream of unknown length: tus-js-client defers the length and sends it with the last PATCH.
  const { Readable } = await import('node:stream')
  const stream = Readable.from([file.subarray(0, MiB), file.subarray(MiB)])
  const d = await upload(stream, { chunkSize: MiB, uploadLengthDeferred: true })
  assert.equal(sha256(await download(d.url)), sha256(file))
})

test('terminating an upload makes it disappear', async () => {
  const file = randomFile(2 * MiB)
  const url = await new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      endpoint: server.endpoint,
      chunkSize: 512 * 1024,
      retryDelays: [],
      onError: reject,
      onChunkComplete: () => u.abort(true).then(() => resolve(u.url), reject)
    })
    u.start()
  })
  const h = await head(url)
  assert.equal(h.status, 404)
})

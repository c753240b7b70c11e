// tus-js-client against several tuskd nodes behind a load balancer (tests/cluster.rs drives it):
//
//   node cluster-client.mjs upload ENDPOINT FILE CHUNK       uploads FILE in CHUNK-byte PATCHes
//   node cluster-client.mjs parallel ENDPOINT FILE N         uploads FILE as N parallel partial
//                                                            uploads and a final one
//
// Prints `url URL` as soon as the upload has one, `retry STATUS` whenever the client retries
// after an error, and `done URL` at the end; exits 1 with the error on stderr if it fails.
import { readFileSync } from 'node:fs'
import * as tus from 'tus-js-client'

const [command, endpoint, file, arg] = process.argv.slice(2)
const data = readFileSync(file)

const options = {
  endpoint,
  // Each retry goes through the balancer, to whichever node is up.
  retryDelays: [0, 250, 500, 1000, 1000, 2000, 2000, 4000, 4000, 4000],
  removeFingerprintOnSuccess: true,
  metadata: { filename: 'cluster.bin' },
  onShouldRetry (err) {
    const status = err.originalResponse ? err.originalResponse.getStatus() : 0
    console.log(`retry ${status}`)
    return true
  }
}

if (command === 'upload') {
  options.chunkSize = Number(arg)
} else if (command === 'parallel') {
  options.parallelUploads = Number(arg)
} else {
  console.error(`unknown command ${command}`)
  process.exit(2)
}

const upload = new tus.Upload(data, {
  ...options,
  onUploadUrlAvailable () {
    console.log(`url ${upload.url}`)
  },
  onError (err) {
    console.error(`upload failed: ${err}`)
    process.exit(1)
  },
  onSuccess () {
    console.log(`done ${upload.url}`)
  }
})
upload.start()

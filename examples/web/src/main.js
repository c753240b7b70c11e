// The demo page: Uppy's Dashboard uploads with tus (pause/resume, several files at once, resume
// after a reload with Golden Retriever); each finished upload is followed (media.js). With a
// token (auth.js: #token=… in the address) every request to tuskd carries it.
import { Uppy, Dashboard, Tus, GoldenRetriever } from 'uppy'
import 'uppy/dist/uppy.min.css'
import './style.css'
import { follow } from './media.js'
import { authHeaders, tokenClaims } from './auth.js'

const params = new URLSearchParams(location.search)
// ?endpoint=… names the tus endpoint; by default tuskd's port on the page's host.
const endpoint = params.get('endpoint') || `${location.protocol}//${location.hostname}:1080/files/`
document.querySelector('#endpoint').textContent = endpoint
const claims = tokenClaims()
document.querySelector('#who').textContent = !claims
  ? 'no token: for a server on --auth none'
  : `uploading as ${claims.sub || 'the token\'s owner'}${claims.exp ? `, token valid until ${new Date(claims.exp * 1000).toLocaleString()}` : ''}`

const uppy = new Uppy({ autoProceed: true })
  .use(Dashboard, {
    inline: true,
    target: '#uppy',
    width: '100%',
    height: 340,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    note: 'Videos, pictures, audio and PDFs'
  })
  .use(Tus, {
    endpoint,
    headers: authHeaders(),
    retryDelays: [0, 1000, 3000, 5000, 10000],
    removeFingerprintOnSuccess: true
  })
  // Files up to 1 GiB are kept in IndexedDB for a reload; a larger one is asked for again after a
  // reload (re-adding it resumes its upload: tus knows the file by its fingerprint).
  .use(GoldenRetriever, { indexedDB: { maxFileSize: 1024 ** 3, maxTotalSize: 2 * 1024 ** 3 } })

// Golden Retriever brings back the files of an upload a reload interrupted; carry on with them
// (tus resumes each at the server's offset).
uppy.on('restored', () => { uppy.emit('restore-confirmed') })

const results = document.querySelector('#results')
uppy.on('upload-success', (file, response) => {
  document.querySelector('#empty').hidden = true
  follow(file.name, response.uploadURL, results)
})

// For scripts and tests: the Uppy instance and the players made.
window.demo = { uppy, players: [] }

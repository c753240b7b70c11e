// tus-js-client against a tuskd in a container (scripts/test-container.sh drives it):
//
//   node container-client.mjs upload ENDPOINT FILE [TYPE]   uploads FILE; prints its URL
//   node container-client.mjs resume URL FILE               continues URL; prints the first PATCH's offset
//   node container-client.mjs media URL TIMEOUT_S [STATUS]  waits until the media status is final;
//                                                           prints the document, exits 1 unless it
//                                                           is STATUS (READY by default)
//   node container-client.mjs pdf FILE                      writes a one-page PDF to FILE
//
// Each command fails (exit 1, a message on stderr) when the client or the server does.
import { readFileSync, writeFileSync } from 'node:fs'
import { basename } from 'node:path'
import * as tus from 'tus-js-client'

function upload (file, options) {
  return new Promise((resolve, reject) => {
    const u = new tus.Upload(file, {
      chunkSize: 1024 * 1024,
      retryDelays: [0, 500, 1000, 2000],
      ...options,
      onError: reject,
      onSuccess: () => resolve(u)
    })
    u.start()
  })
}

// The media status of an upload, until it leaves the working states or the time is up.
async function media (uploadUrl, timeoutS) {
  const u = new URL(uploadUrl)
  const id = u.pathname.split('/').filter(Boolean).at(-1)
  const statusUrl = new URL(`/media/${id}`, u)
  const deadline = Date.now() + timeoutS * 1000
  const final = ['READY', 'REJECTED', 'FAILED']
  let doc = null
  while (Date.now() < deadline) {
    const res = await fetch(statusUrl)
    if (res.status === 200) {
      doc = await res.json()
      if (final.includes(doc.status)) return doc
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`media status of ${id} not final after ${timeoutS} s: ${JSON.stringify(doc)}`)
}

// A one-page PDF with a filled rectangle and a line of text.
function pdf () {
  const content = '0.2 0.4 0.8 rg 50 500 495 250 re f BT /F1 36 Tf 60 400 Td (tuskd) Tj ET'
  const objects = [
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    `<< /Length ${content.length} >>\nstream\n${content}\nendstream`,
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>'
  ]
  let out = '%PDF-1.4\n'
  const offsets = objects.map((o, i) => {
    const at = out.length
    out += `${i + 1} 0 obj\n${o}\nendobj\n`
    return at
  })
  const xref = out.length
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`
  for (const at of offsets) out += `${String(at).padStart(10, '0')} 00000 n \n`
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return Buffer.from(out, 'latin1')
}

const [cmd, a, b, c] = process.argv.slice(2)
try {
  if (cmd === 'upload') {
    const u = await upload(readFileSync(b), {
      endpoint: a,
      metadata: { filename: basename(b), filetype: c || 'application/octet-stream' }
    })
    console.log(u.url)
  } else if (cmd === 'resume') {
    const offsets = []
    await upload(readFileSync(b), {
      uploadUrl: a,
      onBeforeRequest: (req) => {
        if (req.getMethod() === 'PATCH') offsets.push(Number(req.getHeader('Upload-Offset')))
      }
    })
    console.log(offsets[0])
  } else if (cmd === 'media') {
    const doc = await media(a, Number(b))
    console.log(JSON.stringify(doc))
    if (doc.status !== (c || 'READY')) process.exit(1)
  } else if (cmd === 'pdf') {
    writeFileSync(a, pdf())
  } else {
    throw new Error(`unknown command ${cmd}`)
  }
} catch (e) {
  console.error(`${cmd}: ${e.message || e}`)
  process.exit(1)
}

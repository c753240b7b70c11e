// Starts the tuskd binary on a free port with a fresh data directory, and small helpers the
// client tests share.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'

const here = new URL('.', import.meta.url).pathname
export const BIN = process.env.TUSKD_BIN || resolve(here, '../../target/debug/tuskd')

// TUSKD_EXTRA_ARGS adds flags to every server, e.g. "--store s3://bucket/prefix".
const EXTRA = (process.env.TUSKD_EXTRA_ARGS || '').split(' ').filter(Boolean)

export async function startTuskd (extraArgs = []) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tuskd-js-'))
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--fsync', 'off', ...EXTRA, ...extraArgs]
  const child = spawn(BIN, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    // The media pipeline would reject (and delete) the random bytes the client tests upload.
    env: { ...process.env, TUSKD_LOG: 'info', TUSKD_MEDIA: process.env.TUSKD_MEDIA || 'off' }
  })
  const lines = createInterface({ input: child.stderr })
  const endpoint = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`tuskd exited early with ${code}`)))
    lines.on('line', (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/)
      if (m) resolve(m[1])
    })
  })
  return {
    endpoint,
    dataDir,
    async stop () {
      const exited = new Promise((resolve) => child.on('exit', resolve))
      child.kill('SIGTERM')
      await exited
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

export function sha256 (buf) {
  return createHash('sha256').update(buf).digest('hex')
}

export function randomFile (size) {
  return randomBytes(size)
}

export async function download (url) {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

export async function head (url) {
  const res = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  return res
}

// Starts the tuskd binary on a free port with a fresh data directory (with `{ auth: true }`:
// on --auth jwt with a random secret, and mints tokens with `tuskd token`), and small helpers
// the client tests share.
import { execFile, spawn } from 'node:child_process'
import http from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { promisify } from 'node:util'

const here = new URL('.', import.meta.url).pathname
export const BIN = process.env.TUSKD_BIN || resolve(here, '../../target/debug/tuskd')

// TUSKD_EXTRA_ARGS adds flags to every server, e.g. "--store s3://bucket/prefix".
const EXTRA = (process.env.TUSKD_EXTRA_ARGS || '').split(' ').filter(Boolean)

// auth: true starts it with --auth jwt and an HMAC secret made for it (mode 600, beside its
// data); the server's token({ sub, ttl }) mints a token with `tuskd token`. signingKey: true
// gives it a random key for signed media URLs the same way (--media-signing-key-file; the
// --media-access and --media-url-ttl flags are the caller's, in extraArgs).
export async function startTuskd (extraArgs = [], { auth = false, signingKey = false } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tuskd-js-'))
  const secret = join(dataDir, 'jwt-secret')
  const authArgs = []
  if (auth) {
    writeFileSync(secret, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
    authArgs.push('--auth', 'jwt', '--auth-jwt-secret-file', secret)
  }
  if (signingKey) {
    const keyFile = join(dataDir, 'media-signing-key')
    writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
    authArgs.push('--media-signing-key-file', keyFile)
  }
  const args = ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--fsync', 'off', ...EXTRA, ...authArgs, ...extraArgs]
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
    async token ({ sub, ttl = '1h' }) {
      if (!auth) throw new Error('this server was started without auth')
      const { stdout } = await run(BIN, ['token', '--secret-file', secret, '--sub', sub, '--ttl', ttl])
      return stdout.trim()
    },
    async stop () {
      const exited = new Promise((resolve) => child.on('exit', resolve))
      child.kill('SIGTERM')
      await exited
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
}

const run = promisify(execFile)

// The claims of a JWT (not verified: for the tests' own bookkeeping, e.g. its exp).
export function claims (token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString())
}

// { Authorization: 'Bearer …' }, or no headers without a token.
export function bearer (token) {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

export function sha256 (buf) {
  return createHash('sha256').update(buf).digest('hex')
}

export function randomFile (size) {
  return randomBytes(size)
}

export async function download (url, token) {
  const res = await fetch(url, { headers: bearer(token) })
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`)
  return Buffer.from(await res.arrayBuffer())
}

export async function head (url, token) {
  const res = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...bearer(token) } })
  return res
}

// Serves `files` ({ '/path': [contentType, body] }) on 127.0.0.1 and a free port: the pages the
// browser tests load, from an origin of their own.
export async function servePages (files) {
  const server = http.createServer((req, res) => {
    const f = files[req.url]
    if (!f) { res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end(); return }
    res.writeHead(200, { 'Content-Type': f[0] }).end(f[1])
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

// Headless Chromium (Debian's, or $CHROMIUM) as these machines need it: no background
// networking (the network is closed), a fresh temporary profile of Playwright's own.
export async function launchChromium (extraArgs = []) {
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs]
  })
}

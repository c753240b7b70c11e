// One card per finished upload: its media status, polled from GET /media/{id} until READY,
// REJECTED or FAILED (with the progress and the reason), then what the pipeline made: an HLS
// player with a quality selector, poster, preview and thumbnails for video; the variants of a
// picture; a player and the waveform for audio; the page previews of a PDF. With a token
// (auth.js) the status and every file are asked for with it: fetch sends the header, hls.js
// through xhrSetup/fetchSetup, and what an element loads itself comes as a blob: URL.
import Hls from 'hls.js'
import { token, authHeaders, mediaUrl } from './auth.js'

const FINAL = ['READY', 'REJECTED', 'FAILED']
const WORDS = {
  UPLOADING: 'uploading',
  RECEIVED: 'waiting to be processed',
  VALIDATING: 'checking the file',
  SCANNING: 'scanning for malware',
  PROCESSING: 'processing',
  READY: 'ready',
  REJECTED: 'rejected',
  FAILED: 'failed'
}

function el (tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v
    else e.setAttribute(k, v)
  }
  e.append(...children)
  return e
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export async function follow (name, uploadUrl, container) {
  const id = new URL(uploadUrl).pathname.split('/').filter(Boolean).pop()
  const statusUrl = new URL(`/media/${id}`, uploadUrl)
  const status = el('p', { class: 'status', role: 'status' })
  const bar = el('progress', { max: '100', value: '0', 'aria-label': `processing ${name}` })
  const body = el('div', { class: 'outputs' })
  const card = el('article', { class: 'card', 'data-id': id, 'data-status': 'UPLOADING' },
    el('h3', { text: name }), status, bar, body)
  container.prepend(card)

  let doc = null
  for (;;) {
    try {
      const res = await fetch(statusUrl, { headers: authHeaders() })
      if (res.status === 401) {
        card.dataset.status = 'UNAUTHORIZED'
        card.classList.add('bad')
        bar.hidden = true
        status.textContent = token
          ? 'the server refused the token (has it expired?): open the address scripts/demo.sh printed again'
          : 'the server wants a token: open the address scripts/demo.sh printed (with #token=…)'
        return
      }
      if (res.ok) doc = await res.json()
    } catch (e) {
      status.textContent = `cannot reach the server (${e.message}); trying again`
    }
    if (doc) {
      card.dataset.status = doc.status
      bar.value = doc.status === 'READY' ? 100 : doc.progress || 0
      const pct = doc.status === 'PROCESSING' ? ` ${Math.round(doc.progress || 0)}%` : ''
      status.textContent = `${WORDS[doc.status] || doc.status}${pct}`
      if (FINAL.includes(doc.status)) break
    }
    await sleep(1000)
  }
  bar.hidden = true
  if (doc.status !== 'READY') {
    const reason = doc.reason ? `${doc.reason.message} (${doc.reason.code})` : 'no reason given'
    status.textContent = `${WORDS[doc.status]}: ${reason}`
    card.classList.add('bad')
    return
  }
  status.textContent = `ready${doc.type ? ` (${doc.type})` : ''}`
  render(doc, statusUrl, body)
}

function render (doc, base, body) {
  const abs = (u) => new URL(u, base).href
  const of = (kind) => doc.variants.filter((v) => v.kind === kind)
  const poster = of('poster')[0]
  const hls = of('hls')[0]
  if (hls && of('rendition').some((v) => v.width)) {
    body.append(video(abs(hls.url), poster && abs(poster.url), of('rendition')))
  } else if (hls || of('audio').length) {
    body.append(audio(of('audio')[0], hls, abs))
  }
  gallery(body, 'Waveform', of('waveform'), abs)
  gallery(body, 'Poster', poster ? [poster] : [], abs)
  gallery(body, 'Preview', of('preview'), abs)
  gallery(body, 'Thumbnails', of('thumbnail'), abs)
  gallery(body, 'Image variants', of('image'), abs)
  gallery(body, 'Page previews', of('page'), abs)
  const files = el('ul', { class: 'files' })
  for (const v of doc.variants) {
    const size = v.width ? ` ${v.width}×${v.height}` : ''
    files.append(el('li', {}, link(abs(v.url), `${v.kind}${size}`), ` ${v.type}`))
  }
  body.append(el('details', {}, el('summary', { text: `All ${doc.variants.length} files` }), files))
}

// A link to a file. A plain link cannot send the token: with one, a click fetches the file with
// it and saves it.
function link (url, text) {
  const a = el('a', { href: url, text })
  if (token) {
    a.addEventListener('click', async (e) => {
      e.preventDefault()
      const save = el('a', { href: await mediaUrl(url), download: url.split('/').pop() })
      save.click()
    })
  }
  return a
}

// hls.js with the token on each playlist and segment request.
function newHls () {
  if (!token) return new Hls()
  const headers = authHeaders()
  return new Hls({
    xhrSetup: (xhr) => { xhr.setRequestHeader('Authorization', headers.Authorization) },
    fetchSetup: (context, init) => {
      const h = new Headers(init.headers)
      h.set('Authorization', headers.Authorization)
      return new Request(context.url, { ...init, headers: h })
    }
  })
}

function video (src, poster, renditions) {
  const v = el('video', { controls: '', playsinline: '', preload: 'metadata' })
  v.muted = true
  if (poster) mediaUrl(poster).then((u) => { v.poster = u }, () => {})
  const select = el('select', { 'aria-label': 'Quality' }, el('option', { value: '-1', text: 'Auto' }))
  const label = el('label', { class: 'quality' }, 'Quality ', select)
  const player = { video: v, hls: null, select }
  window.demo?.players.push(player)
  if (Hls.isSupported()) {
    const hls = newHls()
    player.hls = hls
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      hls.levels.forEach((level, i) => {
        const kbps = Math.round(level.bitrate / 1000)
        select.append(el('option', { value: String(i), text: `${level.height}p (${kbps} kbit/s)` }))
      })
    })
    select.addEventListener('change', () => { hls.currentLevel = Number(select.value) })
    hls.loadSource(src)
    hls.attachMedia(v)
  } else if (v.canPlayType('application/vnd.apple.mpegurl')) {
    // Safari plays HLS itself (and chooses the rendition itself); it cannot send a token.
    v.src = src
    for (const r of renditions) select.append(el('option', { value: '-1', text: `${r.height}p` }))
    select.disabled = true
  }
  return el('figure', { class: 'player' }, v, el('figcaption', {}, label))
}

function audio (m4a, hls, abs) {
  const a = el('audio', { controls: '', preload: 'metadata' })
  if (m4a) mediaUrl(abs(m4a.url)).then((u) => { a.src = u }, () => {})
  else if (hls && Hls.isSupported()) {
    const h = newHls()
    h.loadSource(abs(hls.url))
    h.attachMedia(a)
  }
  return el('figure', { class: 'player' }, a)
}

function gallery (body, title, variants, abs) {
  if (!variants.length) return
  const list = el('div', { class: 'gallery' })
  for (const v of variants) {
    const size = v.width ? `${v.width}×${v.height}` : ''
    const img = el('img', { alt: `${title.toLowerCase()} ${size}`.trim(), width: String(Math.min(v.width || 320, 320)) })
    mediaUrl(abs(v.url)).then((u) => { img.src = u }, (e) => { img.alt = `${img.alt} (${e.message})` })
    list.append(el('figure', {}, img,
      el('figcaption', { text: `${size} ${v.type.replace('image/', '')}`.trim() })))
  }
  body.append(el('h4', { text: title }), list)
}

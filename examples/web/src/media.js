// One card per finished upload: its media status, pushed by GET /media/{id} as Server-Sent
// Events until READY, REJECTED or FAILED (with the progress and the reason), then what the
// pipeline made: an HLS player with a quality selector, poster, preview and thumbnails for
// video; the variants of a picture; a player and the waveform for audio; the page previews of
// a PDF. A long video is shown as soon as it is PLAYABLE (its lowest rung); at READY the same
// player goes on from where it is with every rung. With a token (auth.js) the status and every
// file are asked for with it: fetch sends the header (the events are read with fetch, since
// EventSource cannot send one), hls.js through xhrSetup/fetchSetup, and what an element loads
// itself comes as a blob: URL.
import Hls from 'hls.js'
import { token, authHeaders, mediaUrl } from './auth.js'

const FINAL = ['READY', 'REJECTED', 'FAILED']
const WORDS = {
  UPLOADING: 'uploading',
  RECEIVED: 'waiting to be processed',
  VALIDATING: 'checking the file',
  SCANNING: 'scanning for malware',
  PROCESSING: 'processing',
  PLAYABLE: 'playable; the other renditions are on their way',
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

// The status events of `statusUrl`, read from a fetch stream: {doc}, {gone}, {unauthorized} or
// {error}. A stream that breaks is opened again a second later (its first event is the current
// status); the generator ends after a final status.
async function * statuses (statusUrl) {
  for (;;) {
    let res = null
    try {
      res = await fetch(statusUrl, { headers: { ...authHeaders(), Accept: 'text/event-stream' } })
    } catch (e) {
      yield { error: e.message }
    }
    if (res && res.status === 401) {
      yield { unauthorized: true }
      return
    }
    if (res && res.ok && res.body) {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          buffer += value
          let end
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end)
            buffer = buffer.slice(end + 2)
            const kind = (block.match(/^event: (.*)$/m) || [])[1]
            const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n')
            if (kind === 'gone') {
              yield { gone: true }
              return
            }
            if (kind === 'status' && data) {
              const doc = JSON.parse(data)
              yield { doc }
              if (FINAL.includes(doc.status)) return
            }
          }
        }
      } catch (e) {
        yield { error: e.message }
      }
    }
    await sleep(1000)
  }
}

export async function follow (name, uploadUrl, container) {
  const id = new URL(uploadUrl).pathname.split('/').filter(Boolean).pop()
  const statusUrl = new URL(`/media/${id}`, uploadUrl)
  const status = el('p', { class: 'status', role: 'status' })
  const bar = el('progress', { max: '100', value: '0', 'aria-label': `processing ${name}` })
  const shown = { player: null, slot: el('div'), rest: el('div') }
  const body = el('div', { class: 'outputs' }, shown.slot, shown.rest)
  const card = el('article', { class: 'card', 'data-id': id, 'data-status': 'UPLOADING' },
    el('h3', { text: name }), status, bar, body)
  container.prepend(card)

  let doc = null
  for await (const m of statuses(statusUrl)) {
    if (m.unauthorized) {
      card.dataset.status = 'UNAUTHORIZED'
      card.classList.add('bad')
      bar.hidden = true
      status.textContent = token
        ? 'the server refused the token (has it expired?): open the address scripts/demo.sh printed again'
        : 'the server wants a token: open the address scripts/demo.sh printed (with #token=…)'
      return
    }
    if (m.gone) {
      card.dataset.status = 'GONE'
      bar.hidden = true
      status.textContent = 'the upload is gone (deleted or expired)'
      return
    }
    if (m.error) status.textContent = `cannot reach the server (${m.error}); trying again`
    if (!m.doc) continue
    doc = m.doc
    card.dataset.status = doc.status
    bar.value = doc.status === 'READY' ? 100 : doc.progress || 0
    const busy = ['PROCESSING', 'PLAYABLE'].includes(doc.status)
    const pct = busy ? ` ${Math.round(doc.progress || 0)}%` : ''
    status.textContent = `${WORDS[doc.status] || doc.status}${pct}`
    if (doc.status === 'PLAYABLE' && !shown.player) render(doc, statusUrl, shown)
  }
  if (!doc) return
  bar.hidden = true
  if (doc.status !== 'READY') {
    const reason = doc.reason ? `${doc.reason.message} (${doc.reason.code})` : 'no reason given'
    status.textContent = `${WORDS[doc.status]}: ${reason}`
    card.classList.add('bad')
    return
  }
  status.textContent = `ready${doc.type ? ` (${doc.type})` : ''}`
  render(doc, statusUrl, shown)
}

// Shows what `doc` lists. The player stays where it is once shown (an early one goes on with the
// final master), the rest is drawn again.
function render (doc, base, shown) {
  const abs = (u) => new URL(u, base).href
  const of = (kind) => doc.variants.filter((v) => v.kind === kind)
  const poster = of('poster')[0]
  const hls = of('hls')[0]
  const body = shown.rest
  body.replaceChildren()
  if (hls && of('rendition').some((v) => v.width)) {
    if (shown.player) upgrade(shown.player, abs(hls.url))
    else {
      shown.player = video(abs(hls.url), poster && abs(poster.url), of('rendition'))
      shown.slot.append(shown.player.figure)
    }
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

// Moves a player to the final master: hls.js loads it and goes on from where the video was.
function upgrade (player, src) {
  const v = player.video
  const at = v.currentTime
  const playing = !v.paused
  if (!player.hls) {
    v.src = src
    v.currentTime = at
    return
  }
  player.hls.once(Hls.Events.MANIFEST_PARSED, () => {
    v.currentTime = at
    if (playing) v.play().catch(() => {})
  })
  player.hls.loadSource(src)
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
      select.replaceChildren(el('option', { value: '-1', text: 'Auto' }))
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
  player.figure = el('figure', { class: 'player' }, v, el('figcaption', {}, label))
  return player
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

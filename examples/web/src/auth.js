// The bearer token the page sends to tuskd, if it has one. scripts/demo.sh starts tuskd on
// --auth jwt and prints the page's address with a token in the fragment (#token=…), which never
// reaches a server. The page moves it into this tab's sessionStorage and out of the address bar
// (a copied link does not carry it; a reload still has it). Without a token (a server on
// --auth none) no Authorization header is sent.
const KEY = 'tuskd-demo-token'

function takeToken () {
  const fromAddress = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromAddress) {
    try { sessionStorage.setItem(KEY, fromAddress) } catch {}
    history.replaceState(history.state, '', location.pathname + location.search)
    return fromAddress
  }
  try { return sessionStorage.getItem(KEY) } catch { return null }
}

export const token = takeToken()

// The headers that carry it: { Authorization: 'Bearer …' }, or none.
export function authHeaders () {
  return token ? { Authorization: `Bearer ${token}` } : {}
}

// Who the token names (its sub) and until when, read from its payload for the page's header
// (the server is the one that checks it).
export function tokenClaims () {
  if (!token) return null
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    return JSON.parse(atob(payload))
  } catch {
    return {}
  }
}

// A URL an <img>, <video poster> or <audio> can load. Elements cannot send headers, so with a
// token the file is fetched with it and handed over as a blob: URL (once per file).
const loaded = new Map()
export function mediaUrl (url) {
  if (!token) return Promise.resolve(url)
  if (!loaded.has(url)) {
    loaded.set(url, fetch(url, { headers: authHeaders() }).then(async (res) => {
      if (!res.ok) throw new Error(`${url}: the server answered ${res.status}`)
      return URL.createObjectURL(await res.blob())
    }).catch((e) => {
      loaded.delete(url)
      throw e
    }))
  }
  return loaded.get(url)
}

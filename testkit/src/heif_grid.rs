//! HEIC grid pictures, as iPhones write every photo (512×512 HEVC tiles under a `grid` item):
//! Debian bookworm's `heif-enc` (libheif 1.15) cannot write grids, so the tests encode each
//! tile with it and this module puts the tiles' coded data under a grid item of a new file
//! (ISO/IEC 23008-12: `ftyp`, `meta` with `hdlr`, `pitm`, `iloc`, `iinf`, `iref dimg`, `iprp`
//! and the grid's `idat`, then `mdat`), optionally with an `irot` on the grid.

/// One tile: a single-picture HEIC file (from `heif-enc`).
struct Tile {
    /// The tile's `hvcC` box, whole.
    hvcc: Vec<u8>,
    /// The coded picture (length-prefixed NAL units).
    data: Vec<u8>,
}

/// The boxes in `bytes`: (type, payload) in order.
fn boxes(bytes: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap();
        let (head, size) = if size == 1 {
            let big = u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap());
            (16, big as usize)
        } else if size == 0 {
            (8, bytes.len() - at)
        } else {
            (8, size)
        };
        out.push((kind, &bytes[at + head..at + size]));
        at += size;
    }
    out
}

fn find<'a>(list: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> &'a [u8] {
    list.iter()
        .find(|(k, _)| k == kind)
        .unwrap_or_else(|| panic!("no {} box", String::from_utf8_lossy(kind)))
        .1
}

/// Reads an unsigned big-endian number of `n` bytes at `*at`, moving past it.
fn read(b: &[u8], at: &mut usize, n: usize) -> u64 {
    let v = b[*at..*at + n]
        .iter()
        .fold(0u64, |acc, &x| (acc << 8) | x as u64);
    *at += n;
    v
}

impl Tile {
    /// The primary picture's hvcC and coded data from a `heif-enc` file.
    fn parse(file: &[u8]) -> Tile {
        let top = boxes(file);
        let meta = &find(&top, b"meta")[4..];
        let inner = boxes(meta);
        let pitm = find(&inner, b"pitm");
        let primary = if pitm[0] == 0 {
            u16::from_be_bytes([pitm[4], pitm[5]]) as u64
        } else {
            u32::from_be_bytes(pitm[4..8].try_into().unwrap()) as u64
        };
        let ipco = boxes(find(&boxes(find(&inner, b"iprp")), b"ipco"));
        let hvcc_payload = find(&ipco, b"hvcC");
        let mut hvcc = ((hvcc_payload.len() + 8) as u32).to_be_bytes().to_vec();
        hvcc.extend_from_slice(b"hvcC");
        hvcc.extend_from_slice(hvcc_payload);
        // iloc: the primary item's extents (construction method 0: file offsets).
        let iloc = find(&inner, b"iloc");
        let version = iloc[0];
        let mut at = 4;
        let sizes = read(iloc, &mut at, 1);
        let (offset_size, length_size) = ((sizes >> 4) as usize, (sizes & 15) as usize);
        let more = read(iloc, &mut at, 1);
        let (base_size, index_size) = ((more >> 4) as usize, (more & 15) as usize);
        let index_size = if version >= 1 { index_size } else { 0 };
        let id_size = if version < 2 { 2 } else { 4 };
        let count = read(iloc, &mut at, id_size);
        for _ in 0..count {
            let id = read(iloc, &mut at, id_size);
            if version >= 1 {
                read(iloc, &mut at, 2);
            }
            read(iloc, &mut at, 2);
            let base = read(iloc, &mut at, base_size);
            let extents = read(iloc, &mut at, 2);
            let mut data = Vec::new();
            for _ in 0..extents {
                read(iloc, &mut at, index_size);
                let off = (base + read(iloc, &mut at, offset_size)) as usize;
                let len = read(iloc, &mut at, length_size) as usize;
                data.extend_from_slice(&file[off..off + len]);
            }
            if id == primary {
                return Tile { hvcc, data };
            }
        }
        panic!("the primary item has no location");
    }
}

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(payload);
    b
}

fn full(kind: &[u8; 4], version: u8, flags: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![version];
    p.extend_from_slice(&flags.to_be_bytes()[1..]);
    p.extend_from_slice(payload);
    bx(kind, &p)
}

fn ispe(w: u32, h: u32) -> Vec<u8> {
    let mut p = w.to_be_bytes().to_vec();
    p.extend_from_slice(&h.to_be_bytes());
    full(b"ispe", 0, 0, &p)
}

/// A HEIC whose primary item is a `cols`×`rows` grid of `tiles` (single-picture HEIC files
/// of `tile` size each, row by row), `size` wide and high (at most the tiles' extent), turned
/// `quarter_turns` × 90° anticlockwise by an `irot` on the grid when that is not 0.
pub fn grid(
    tiles: &[Vec<u8>],
    (cols, rows): (u8, u8),
    tile: (u32, u32),
    size: (u16, u16),
    quarter_turns: u8,
) -> Vec<u8> {
    assert_eq!(tiles.len(), cols as usize * rows as usize);
    let tiles: Vec<Tile> = tiles.iter().map(|t| Tile::parse(t)).collect();
    let n = tiles.len() as u16;
    let grid_id = n + 1;
    let ftyp = bx(b"ftyp", b"heic\0\0\0\0mif1heic");
    let hdlr = full(b"hdlr", 0, 0, b"\0\0\0\0pict\0\0\0\0\0\0\0\0\0\0\0\0\0");
    let pitm = full(b"pitm", 0, 0, &grid_id.to_be_bytes());
    let mut infe = Vec::new();
    infe.extend_from_slice(&(n + 1).to_be_bytes());
    for id in 1..=n {
        let mut p = id.to_be_bytes().to_vec();
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(b"hvc1\0");
        infe.extend(full(b"infe", 2, 1, &p));
    }
    let mut p = grid_id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(b"grid\0");
    infe.extend(full(b"infe", 2, 0, &p));
    let iinf = full(b"iinf", 0, 0, &infe);
    let mut dimg = grid_id.to_be_bytes().to_vec();
    dimg.extend_from_slice(&n.to_be_bytes());
    for id in 1..=n {
        dimg.extend_from_slice(&id.to_be_bytes());
    }
    let iref = full(b"iref", 0, 0, &bx(b"dimg", &dimg));
    // Properties: each tile's hvcC (1..=n), the tiles' ispe, the grid's ispe, its irot.
    let mut ipco = Vec::new();
    for t in &tiles {
        ipco.extend_from_slice(&t.hvcc);
    }
    let (rw, rh) = (size.0 as u32, size.1 as u32);
    ipco.extend(ispe(tile.0, tile.1));
    ipco.extend(ispe(rw, rh));
    if quarter_turns != 0 {
        ipco.extend(bx(b"irot", &[quarter_turns & 3]));
    }
    let mut ipma = ((n + 1) as u32).to_be_bytes().to_vec();
    for id in 1..=n {
        ipma.extend_from_slice(&id.to_be_bytes());
        ipma.extend_from_slice(&[2, 0x80 | id as u8, n as u8 + 1]);
    }
    ipma.extend_from_slice(&grid_id.to_be_bytes());
    if quarter_turns != 0 {
        ipma.extend_from_slice(&[2, n as u8 + 2, 0x80 | (n as u8 + 3)]);
    } else {
        ipma.extend_from_slice(&[1, n as u8 + 2]);
    }
    let iprp = bx(
        b"iprp",
        &[bx(b"ipco", &ipco), full(b"ipma", 0, 0, &ipma)].concat(),
    );
    let mut grid_data = vec![0u8, 0, rows - 1, cols - 1];
    grid_data.extend_from_slice(&size.0.to_be_bytes());
    grid_data.extend_from_slice(&size.1.to_be_bytes());
    let idat = bx(b"idat", &grid_data);
    // iloc v1, 4-byte offsets and lengths; the tiles in mdat, the grid in idat.
    let iloc = |mdat_start: u32| {
        let mut p = vec![0x44, 0x00];
        p.extend_from_slice(&(n + 1).to_be_bytes());
        let mut off = mdat_start;
        for (i, t) in tiles.iter().enumerate() {
            p.extend_from_slice(&(i as u16 + 1).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
            p.extend_from_slice(&off.to_be_bytes());
            p.extend_from_slice(&(t.data.len() as u32).to_be_bytes());
            off += t.data.len() as u32;
        }
        p.extend_from_slice(&grid_id.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 0, 1]);
        p.extend_from_slice(&0u32.to_be_bytes());
        p.extend_from_slice(&(grid_data.len() as u32).to_be_bytes());
        full(b"iloc", 1, 0, &p)
    };
    let meta = |mdat_start| {
        let inner = [
            hdlr.clone(),
            pitm.clone(),
            iloc(mdat_start),
            iinf.clone(),
            iref.clone(),
            iprp.clone(),
            idat.clone(),
        ]
        .concat();
        full(b"meta", 0, 0, &inner)
    };
    // The tiles' data starts after ftyp, meta and mdat's header; meta's size does not depend
    // on the offsets it holds.
    let start = (ftyp.len() + meta(0).len() + 8) as u32;
    let data: Vec<u8> = tiles.iter().flat_map(|t| t.data.clone()).collect();
    [ftyp, meta(start), bx(b"mdat", &data)].concat()
}

//! MPEG-TS, as far as joining a video's chunks needs it: the video frames a segment holds
//! (their presentation times), so a joined playlist's durations come from frame counts
//! rather than from the muxer's estimate. Pure; reads what the transcode wrote.

/// The PTS (90 kHz) of each video PES (one per frame) in an MPEG-TS file, in file order;
/// packets that are not 188-byte TS packets are skipped.
pub fn video_pts(ts: &[u8]) -> Vec<u64> {
    let mut out = Vec::new();
    for pkt in ts.chunks_exact(188).filter(|p| p[0] == 0x47) {
        let (start, adaptation) = (pkt[1] & 0x40 != 0, (pkt[3] >> 4) & 3);
        if !start || adaptation == 2 {
            continue;
        }
        let at = if adaptation == 3 {
            5 + pkt[4] as usize
        } else {
            4
        };
        let Some(pes) = pkt.get(at..).filter(|p| p.len() >= 14) else {
            continue;
        };
        let video = pes[..3] == [0, 0, 1] && (0xe0..=0xef).contains(&pes[3]);
        if video && pes[7] & 0x80 != 0 {
            let b = &pes[9..14];
            let pts = (u64::from(b[0] >> 1) & 7) << 30
                | u64::from(b[1]) << 22
                | u64::from(b[2] >> 1) << 15
                | u64::from(b[3]) << 7
                | u64::from(b[4] >> 1);
            out.push(pts);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn junk_has_no_frames() {
        assert!(super::video_pts(b"").is_empty());
        assert!(super::video_pts(&[0x47; 1000]).is_empty());
        assert!(super::video_pts(&[0u8; 188 * 3]).is_empty());
    }
}

//! How a video's transcode is shared out (`passes`): in one pass, or (a long video with a
//! ladder) a first pass over the whole source with the lowest rung, the stills and the sound,
//! then the upper rungs in chunks cut on segment bounds, each a task of its own
//! (`job::tasks`). Pure, so the cuts are unit-tested.

use std::time::Duration;

use super::plan::{Plan, Sound};

/// A share of a video's transcode.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Pass {
    /// The plan's renditions it encodes.
    pub rungs: std::ops::Range<usize>,
    /// Whether it takes the poster, thumbnails, preview and storyboard.
    pub stills: bool,
    /// The run's progress from and to, percent.
    pub share: (f32, f32),
    /// Where its sound goes.
    #[serde(default)]
    pub sound: Sound,
    /// A chunk's part of the source, [start, stop) in ns (stop `u64::MAX`: to the end); None:
    /// all of it.
    #[serde(default)]
    pub range: Option<(u64, u64)>,
    /// A chunk's first segment's number in its renditions.
    #[serde(default)]
    pub first_segment: u64,
}

impl Pass {
    /// A pass over the whole source.
    pub fn whole(rungs: std::ops::Range<usize>, stills: bool, sound: Sound) -> Pass {
        Pass {
            rungs,
            stills,
            share: (0.0, 100.0),
            sound,
            range: None,
            first_segment: 0,
        }
    }
}

/// How a long video is split (`--media-playable-from`, `--media-chunk`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Split {
    /// Videos at least this long (with two rungs or more) are split; None: never.
    pub from: Option<Duration>,
    /// The length of a chunk of the upper rungs; None: the upper rungs in one pass.
    pub chunk: Option<Duration>,
}

/// The first pass's share of a split video's progress: its pictures are small.
const FIRST_SHARE: f32 = 20.0;

/// The passes of a video of `duration_ms` under `plan`: one; or (`split.from` long or longer,
/// two rungs or more) a first pass over the whole source with the rungs up to `first_end`
/// (the lowest, or up to the MP4 fallback's), the stills and the sound in a rendition of its
/// own (published as playable), then the other rungs in chunks of `split.chunk` (a whole
/// number of segments, so every chunk starts on a keyframe of every rung; a short last piece
/// joins the chunk before it), each with its share of the progress by its length.
pub fn passes(plan: &Plan, duration_ms: Option<u64>, split: Split, first_end: usize) -> Vec<Pass> {
    let rungs = plan.renditions.len();
    let first_end = first_end.clamp(1, rungs.max(1));
    let long = split
        .from
        .is_some_and(|from| duration_ms.is_some_and(|ms| Duration::from_millis(ms) >= from));
    if rungs < 2 || !long || first_end >= rungs {
        return vec![Pass::whole(0..rungs, true, Sound::Muxed)];
    }
    let mut passes = vec![Pass {
        share: (0.0, FIRST_SHARE),
        ..Pass::whole(0..first_end, true, Sound::Own)
    }];
    let ms = duration_ms.unwrap_or(0);
    let (num, den) = (plan.fps.0.max(1) as u128, plan.fps.1.max(1) as u128);
    let gop = u128::from(plan.gop.max(1));
    // A frame's time in ns, exactly on the output's grid.
    let at = |frame: u128| (frame * den * 1_000_000_000 / num) as u64;
    let frames = u128::from(ms) * num / (den * 1000);
    let per_chunk = split.chunk.map_or(u128::MAX, |c| {
        let segments = (c.as_nanos() * num / (den * 1_000_000_000) / gop).max(1);
        segments * gop
    });
    let mut starts = vec![0u128];
    while let Some(next) = starts.last().and_then(|s| s.checked_add(per_chunk))
        && next.saturating_add(per_chunk / 2) < frames
    {
        starts.push(next);
    }
    let rest = 100.0 - FIRST_SHARE;
    for (k, &start) in starts.iter().enumerate() {
        let stop = starts.get(k + 1).copied();
        let share = |f: u128| FIRST_SHARE + rest * f.min(frames) as f32 / frames.max(1) as f32;
        passes.push(Pass {
            rungs: first_end..rungs,
            stills: false,
            share: (share(start), stop.map_or(100.0, share)),
            sound: Sound::Without,
            range: (split.chunk.is_some()).then(|| (at(start), stop.map_or(u64::MAX, at))),
            first_segment: (start / gop) as u64,
        });
    }
    passes
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Split, passes};
    use crate::media::plan::{Plan, Rendition, Sound};

    fn ladder(n: usize) -> Plan {
        Plan {
            renditions: (0..n)
                .map(|i| Rendition {
                    width: 640 * (i as u32 + 1),
                    height: 360 * (i as u32 + 1),
                    kbps: 800,
                })
                .collect(),
            fps: (30, 1),
            gop: 120,
        }
    }

    const SPLIT: Split = Split {
        from: Some(Duration::from_secs(30)),
        chunk: Some(Duration::from_secs(30)),
    };

    #[test]
    fn short_videos_and_single_rungs_are_one_pass() {
        for one in [
            passes(&ladder(3), Some(29_999), SPLIT, 1),
            passes(&ladder(1), Some(600_000), SPLIT, 1),
            passes(&ladder(3), None, SPLIT, 1),
            passes(
                &ladder(3),
                Some(600_000),
                Split {
                    from: None,
                    ..SPLIT
                },
                1,
            ),
            passes(&ladder(3), Some(600_000), SPLIT, 3),
        ] {
            assert_eq!(one.len(), 1);
            let p = &one[0];
            assert_eq!((p.rungs.end, p.stills), (p.rungs.len(), true));
            assert_eq!((p.sound, p.range), (Sound::Muxed, None));
        }
    }

    #[test]
    fn long_videos_are_playable_first_then_chunked_on_segment_bounds() {
        // 100 s at 30 fps, 4 s segments; chunks of 30 s become 28 s (7 segments).
        let p = passes(&ladder(3), Some(100_000), SPLIT, 1);
        let first = &p[0];
        assert_eq!((first.rungs.clone(), first.stills), (0..1, true));
        assert_eq!(
            (first.sound, first.range, first.share),
            (Sound::Own, None, (0.0, 20.0))
        );
        let chunks = &p[1..];
        let s = 1_000_000_000u64;
        let ranges: Vec<_> = chunks.iter().map(|c| c.range.unwrap()).collect();
        // 84 s to 100 s is 16 s, more than half a chunk: a chunk of its own.
        assert_eq!(
            ranges,
            [
                (0, 28 * s),
                (28 * s, 56 * s),
                (56 * s, 84 * s),
                (84 * s, u64::MAX)
            ]
        );
        let firsts: Vec<_> = chunks.iter().map(|c| c.first_segment).collect();
        assert_eq!(firsts, [0, 7, 14, 21]);
        for c in chunks {
            assert_eq!(
                (c.rungs.clone(), c.stills, c.sound),
                (1..3, false, Sound::Without)
            );
        }
        assert_eq!(chunks[0].share.0, 20.0);
        assert_eq!(chunks.last().unwrap().share.1, 100.0);
        for w in p[1..].windows(2) {
            assert_eq!(w[0].share.1, w[1].share.0, "shares continue");
        }
        // A short last piece joins the chunk before: 90 s is 28+28+34.
        let p = passes(&ladder(3), Some(90_000), SPLIT, 1);
        assert_eq!(p.len(), 4);
        assert_eq!(p[3].range, Some((56 * s, u64::MAX)));
        // Without chunks, the upper rungs are one pass over the whole source.
        let p = passes(
            &ladder(3),
            Some(100_000),
            Split {
                chunk: None,
                ..SPLIT
            },
            2,
        );
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].rungs.clone(), p[1].rungs.clone()), (0..2, 2..3));
        assert_eq!((p[1].range, p[1].share), (None, (20.0, 100.0)));
    }

    #[test]
    fn ntsc_chunks_start_on_exact_frames() {
        let plan = Plan {
            fps: (30_000, 1001),
            ..ladder(2)
        };
        let p = passes(&plan, Some(70_000), SPLIT, 1);
        // 7 segments of 120 frames at 1001/30000 s: 28.028 s.
        assert_eq!(p[1].range, Some((0, 28_028_000_000)));
        assert_eq!(p[2].range, Some((28_028_000_000, u64::MAX)));
    }
}

//! A video's run: its transcode in passes (`video::passes`), each published as it ends. With
//! two passes, the first (the lowest rung, the poster and the other stills) is published with
//! `playable.m3u8` and the record says PLAYABLE, pointing at it; the second adds the other
//! rungs and `master.m3u8`, and the run ends READY.

use std::path::Path;
use std::sync::Arc;

use super::{Ctx, Progress};
use crate::domain::media::{MediaRecord, MediaStatus, MediaUpdate, Probe, Published, VideoFacts};
use crate::hooks::HookType;
use crate::media::config::MediaConfig;
use crate::media::events;
use crate::media::limits::{Kind, check_limits};
use crate::media::publish::{MASTER, PLAYABLE_MASTER, Publisher};
use crate::media::steps::StepError;
use crate::media::video;

impl Ctx<'_> {
    /// Checks a probed video's limits, transcodes it pass by pass into `out` and publishes
    /// each pass; the probe is recorded again with what decoding learned.
    pub(super) async fn video(
        &self,
        input: &Path,
        out: &Path,
        cfg: &MediaConfig,
        probe: &Probe,
        facts: &VideoFacts,
        progress: Arc<Progress>,
    ) -> Result<Published, StepError> {
        check_limits(cfg, Kind::Video, probe)?;
        let rungs = video::plan(facts, cfg).renditions.len();
        let passes = video::passes(rungs, probe.duration_ms, cfg.playable_from);
        let version = self.new_version().await?;
        let mut publisher = Publisher::new(self.cx, &self.job.id, version, out);
        let mut variable_rate = false;
        for (i, pass) in passes.iter().enumerate() {
            let produced =
                video::process(input, out, probe, facts, cfg, progress.clone(), pass).await?;
            variable_rate |= produced.variable_frame_rate;
            publisher.add(&produced).await?;
            if i + 1 < passes.len() {
                self.playable(publisher.master(PLAYABLE_MASTER).await?)
                    .await?;
            }
        }
        if variable_rate && !facts.variable_frame_rate {
            // Seen while decoding: the frames' durations varied though the container named a
            // rate.
            let mut probe = probe.clone();
            if let Some(v) = probe.video.as_mut() {
                v.variable_frame_rate = true;
            }
            self.record(MediaUpdate {
                probe: Some(probe),
                ..Default::default()
            })
            .await?;
        }
        publisher.master(MASTER).await
    }

    /// Records the video as playable with what is published so far; the outputs of a run
    /// before (a reprocess) are then pointed at by nothing and deleted.
    async fn playable(&self, early: Published) -> Result<(), StepError> {
        let version = early.version.clone();
        let after = MediaRecord {
            status: MediaStatus::Playable,
            published: Some(early.clone()),
            ..self.job.clone()
        };
        let events = events::event(self.cx, HookType::MediaPlayable, &after, Some(self.upload));
        let wake = !events.is_empty();
        self.record(MediaUpdate {
            status: Some(MediaStatus::Playable),
            published: Some(early),
            events,
            ..Default::default()
        })
        .await?;
        if wake {
            self.cx.hooks.wake();
        }
        let id = &self.job.id;
        tracing::info!(%id, %version, "media playable");
        super::drop_superseded(self.cx, id, self.job.published.as_ref(), &version).await;
        Ok(())
    }
}

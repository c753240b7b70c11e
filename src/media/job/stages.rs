//! A video's run. A short one (or one rung) is transcoded in one pass and published; a long
//! one with a ladder is split into tasks (`tasks`: `passes::passes`), and the run waits for
//! them. Whoever assembles the lowest rung's task (with the stills) publishes them with
//! `playable.m3u8` and records the video PLAYABLE (`playable`); the last one writes
//! `master.m3u8` and the job ends READY.

use std::path::Path;
use std::sync::Arc;

use super::{Ctx, Progress, Ran};
use crate::domain::media::{MediaRecord, MediaStatus, MediaUpdate, Probe, Published, VideoFacts};
use crate::hooks::HookType;
use crate::media::config::MediaConfig;
use crate::media::events;
use crate::media::limits::{Kind, check_limits};
use crate::media::passes;
use crate::media::publish::{MASTER, Publisher};
use crate::media::steps::StepError;
use crate::media::video;

impl Ctx<'_> {
    /// Checks a probed video's limits and transcodes it into `out` and publishes it, or plans
    /// its tasks; the probe is recorded again with what decoding learned.
    pub(super) async fn video(
        &self,
        input: &Path,
        out: &Path,
        cfg: &MediaConfig,
        probe: &Probe,
        facts: &VideoFacts,
        progress: Arc<Progress>,
    ) -> Result<Ran, StepError> {
        check_limits(cfg, Kind::Video, probe)?;
        let plan = video::plan(facts, cfg);
        let split = passes::Split {
            from: cfg.playable_from,
            chunk: cfg.chunk,
        };
        // The MP4 fallback's rung is encoded whole, in the first pass.
        let extras =
            crate::media::extras::plan(&plan, probe.duration_ms.unwrap_or(0), cfg.mp4_fallback);
        let first_end = extras.mp4.map_or(1, |m| m + 1);
        let passes = passes::passes(&plan, probe.duration_ms, split, first_end);
        let version = self.new_version().await?;
        if passes.len() > 1 {
            return self.plan_tasks(&plan, &passes, &version).await;
        }
        let mut publisher = Publisher::new(self.cx, &self.job.id, version, out);
        let produced = video::process(input, out, probe, facts, cfg, progress, &passes[0]).await?;
        publisher.add(&produced).await?;
        self.note_variable_rate(probe, produced.variable_frame_rate)
            .await?;
        Ok(Ran::Done(Some(publisher.master(MASTER).await?)))
    }

    /// Records in the probe that the frames' durations varied when decoding saw it
    /// (`variable_rate`) though the container named a rate.
    pub(super) async fn note_variable_rate(
        &self,
        probe: &Probe,
        variable_rate: bool,
    ) -> Result<(), StepError> {
        let named = probe.video.as_ref().is_some_and(|v| !v.variable_frame_rate);
        if !(variable_rate && named) {
            return Ok(());
        }
        let mut probe = probe.clone();
        if let Some(v) = probe.video.as_mut() {
            v.variable_frame_rate = true;
        }
        self.record(MediaUpdate {
            probe: Some(probe),
            ..Default::default()
        })
        .await
    }

    /// Records the video as playable with what is published so far; the outputs of a run
    /// before (a reprocess) are then pointed at by nothing and deleted.
    pub(super) async fn playable(&self, early: Published) -> Result<(), StepError> {
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

"""Prometheus metrics of automatic detection on live video, on the registry the server passes in."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
                    2.5, 5.0)
_HIDE_BUCKETS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class ScreeningMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.samples = Counter(
            "sfu_moderation_samples_classified", "Pictures of people's video classified, by verdict (clean or flagged)",
            ["verdict"], registry=r,
        )
        self.dropped = Counter(
            "sfu_moderation_samples_dropped",
            "Samples not classified, by why: queue_full (the classifier is busy), no_picture (no decodable "
            "picture in time), failed (the classifier failed) or timeout (no verdict in time)",
            ["why"], registry=r,
        )
        self.latency = Histogram(
            "sfu_moderation_classifier_seconds",
            "From a picture handed to the classifier to its verdict (downscaling, queueing, classification)",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.labels = Counter(
            "sfu_moderation_flagged_labels", "Flagged pictures, by the classifier label that flagged them", ["label"],
            registry=r,
        )
        self.hidden = Counter("sfu_moderation_videos_hidden", "Videos hidden from a partner, by reason", ["reason"], registry=r)
        self.hide_seconds = Histogram(
            "sfu_moderation_hide_seconds", "From a flagged picture taken to the partner's video hidden",
            buckets=_HIDE_BUCKETS, registry=r,
        )
        self.prescreen_seconds = Histogram(
            "sfu_moderation_prescreen_seconds", "From paired to the new partner's video shown after its first picture "
            "was classified clean", buckets=_HIDE_BUCKETS, registry=r,
        )
        self.prescreen_timeouts = Counter(
            "sfu_moderation_prescreen_timeouts",
            "New partners shown without a verdict because none came in time (pre-screen fails open)", registry=r,
        )

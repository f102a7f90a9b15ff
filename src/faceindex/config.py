"""Settings: built once at the edge (CLI, server, tests) and passed down; never a global.

Every field can be set by keyword, by an environment variable ``FACEINDEX_<FIELD>``, or in
``<home>/config.toml``; keywords win over the environment, which wins over the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import tomllib
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from faceindex.errors import ConfigError
from faceindex.sources.netguard import DEFAULT_DENY_DOMAINS

__all__ = ["DEFAULT_HOME", "Settings"]

DEFAULT_HOME = Path("~/.faceindex")


class Settings(BaseSettings):
    """All tunables of one engine home. See docs/CONFIG.md for how each was chosen."""

    model_config = SettingsConfigDict(env_prefix="FACEINDEX_", frozen=True, extra="forbid")

    home: Path = Field(default=DEFAULT_HOME, description="engine home: catalog, index, config")
    catalog_url: str = Field(default="", description="sqlite:///path or postgresql://...")
    index_url: str = Field(default="", description="faiss:///dir, memory://, milvus://...")
    actor: str = Field(default="local-admin", description="who the CLI acts as (audit)")
    actor_role: Literal["admin", "investigator", "auditor", "privacy-officer"] = Field(
        default="admin", description="the CLI actor's role (permission table: governance/roles)"
    )

    # detection
    detector: Literal["hog", "cnn", "whole"] = Field(
        default="hog", description="hog (fast), cnn (MMOD, slow on CPU), whole (pre-cropped)"
    )
    detect_max_side: int = Field(
        default=1600, ge=0, description="detect on a copy no longer than this (0 = full size)"
    )
    detect_upsample: int = Field(default=1, ge=0, le=3, description="HOG/CNN upsampling passes")
    detect_fallback: bool = Field(
        default=True, description="when nothing is found: HOG with one more upsample, then CNN"
    )
    min_face_size: int = Field(default=20, ge=0, description="drop faces smaller than this (px)")

    # embedding
    mirror: bool = Field(default=True, description="average descriptor with its mirror image")
    jitters: int = Field(default=0, ge=0, le=100, description="dlib num_jitters (0 = none)")
    quality_floor: float = Field(default=0.0, ge=0.0, le=1.0, description="skip faces below")

    # search
    match_threshold: float | None = Field(
        default=None,
        gt=0,
        description="distance of eval reports and subject access (default: the model pack's; "
        "search bands use the calibration)",
    )
    top_k: int = Field(default=10, ge=1, le=1000)

    # ingest
    workers: int = Field(default=0, ge=0, description="processes; 0 = one per core")
    batch_size: int = Field(default=8, ge=1, le=256, description="images per work unit")
    max_pixels: int = Field(default=60_000_000, ge=1, description="decompression-bomb limit")
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1, description="largest file read")
    thumbnail_size: int = Field(default=112, ge=32, le=512)

    # governance: see docs/GOVERNANCE.md
    erase_threshold: float | None = Field(
        default=None,
        gt=0,
        description="erase by person: faces this close to a probe (default: the model pack's)",
    )
    suppress_threshold: float | None = Field(
        default=None,
        gt=0,
        description="opt-out: faces this close are never indexed or returned (default: pack's)",
    )
    receipt_probe_days: int = Field(
        default=30, ge=0, description="keep a person-erase probe to re-check its receipt"
    )
    keep_probes: bool = Field(
        default=False, description="keep search probe images (default: only their sha256)"
    )
    url_allow: tuple[str, ...] = Field(
        default=(), description="hosts/networks exempt from the private-address refusal"
    )
    url_deny_domains: tuple[str, ...] = Field(
        default=DEFAULT_DENY_DOMAINS,
        description="never fetched, with their subdomains",
    )
    url_user_agent: str = Field(default="faceindex-fetch/0.1", description="robots.txt agent")
    url_timeout_s: float = Field(default=20.0, gt=0, description="per URL, redirects included")
    url_max_redirects: int = Field(default=3, ge=0, le=10)
    archive_max_members: int = Field(default=100_000, ge=1)
    archive_max_total_bytes: int = Field(default=20 * 1024**3, ge=1, description="uncompressed")

    # HTTP server (faceindex serve): see docs/API.md
    server_threads: int = Field(default=2, ge=1, le=64, description="engine calls at once")
    server_queue: int = Field(default=8, ge=0, description="searches waiting; beyond: 429")
    rate_limit_per_minute: int = Field(
        default=120, ge=1, description="requests per token; failed sign-ins per address"
    )
    rate_limit_burst: int = Field(default=30, ge=1, description="requests per token at once")
    request_timeout_s: float = Field(default=30.0, gt=0, description="engine call limit (503)")

    # model packs (vision/pack.py): the face models, their dimension, metric and thresholds
    model: str = Field(
        default="",
        description="model pack: a built-in name (dlib) or a pack directory (default: the "
        "one the home records, dlib for a new home)",
    )

    # ingest hardening (poison items): README, "Every entry is accounted for"
    ingest_item_timeout_s: float = Field(
        default=120.0, ge=0, description="per item: read, decode and analysis (0 = no limit)"
    )

    # audit chain key (issue 9, item 15): kept outside the audit files; docs/GOVERNANCE.md
    audit_key_file: Path | None = Field(
        default=None, description="HMAC key file for the audit chain (default <home>/audit.key)"
    )
    audit_key: SecretStr | None = Field(
        default=None, description="the audit HMAC key itself (FACEINDEX_AUDIT_KEY); wins"
    )

    # bounded probes (issue 9, item 5): see docs/BENCHMARKS.md, "Bounded probes"
    detect_cnn_max_pixels: int = Field(
        default=500_000, ge=10_000, description="pixels the CNN detector sees at most"
    )
    probe_detect_max_pixels: int = Field(
        default=1_000_000,
        ge=0,
        description="a probe's first HOG pass sees at most this many pixels, then the ingest"
        " chain if it finds nothing (0: probes detect as ingest does)",
    )
    server_analysis: Literal["process", "thread"] = Field(
        default="process", description="server probes analysed in worker processes or threads"
    )
    analysis_worker_max_rss_mb: int = Field(
        default=2048, ge=256, description="restart a server analysis worker holding more"
    )

    # ONNX Runtime for dlib's networks (issue 12): see docs/BENCHMARKS.md
    embedder_runtime: Literal["onnx", "dlib"] = Field(
        default="onnx", description="run dlib's ResNet on onnx (converted once) or dlib itself"
    )
    cnn_runtime: Literal["onnx", "dlib"] = Field(
        default="onnx", description="run dlib's MMOD CNN detector on onnx or dlib itself"
    )
    onnx_provider: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="cpu, cuda, or auto (CUDA where onnxruntime-gpu sees a GPU)"
    )
    onnx_threads: int = Field(
        default=0, ge=0, le=256, description="intra-op threads per worker; 0 = cores / workers"
    )
    onnx_cache_dir: Path | None = Field(
        default=None, description="converted graphs (default ~/.cache/faceindex/onnx)"
    )

    # calibrated search decisions (issue 13): see search/scoring.py and docs/API.md
    calibration_path: Path | None = Field(
        default=None, description="the home's calibration JSON (default: the model's own)"
    )
    match_bound: float = Field(
        default=0.01, gt=0, lt=1, description="'match': chance of any stranger this close below"
    )
    possible_strangers: float = Field(
        default=10.0, ge=0, description="'possible': at most this many strangers expected"
    )
    possible_fmr: float = Field(
        default=0.05, gt=0, le=1, description="'possible': per-comparison FMR at most"
    )
    match_quality: float = Field(
        default=0.3, ge=0, le=1, description="'match' needs probe and gallery face this good"
    )

    # persons (clustering faces into people: persons/build.py, docs/BENCHMARKS.md)
    persons_method: Literal["chinese-whispers", "components"] = Field(
        default="chinese-whispers", description="how `persons build` clusters the face graph"
    )
    persons_neighbours: int = Field(
        default=20, ge=1, le=1000, description="links per face in the persons graph (kNN)"
    )
    persons_link_fmr: float = Field(
        default=0.002, gt=0, lt=1, description="link two faces when strangers are this rare"
    )
    persons_gate_fmr: float = Field(
        default=0.002, gt=0, lt=1, description="components: join groups whose means are this close"
    )
    template_fusion: Literal["best-of", "mean"] = Field(
        default="mean", description="how several photos / a person's faces rank results"
    )

    # governance state where every node sees it (issue 11): docs/GOVERNANCE.md
    governance_url: str = Field(
        default="",
        description="audit chain, governance store, accounts, search records: empty = files "
        "in the home, sqlite:///dir, or postgresql://...[?schema=NAME]",
    )
    rate_limit_scope: Literal["process", "home"] = Field(
        default="process",
        description="rate limits per server process, or one budget per token for every "
        "process of the home (kept in the governance database: a write per request)",
    )

    # watchlists (issue 10): governance/watches.py
    watch_default_days: int = Field(
        default=30, ge=1, le=3650, description="a watch's expiry when none is given (days)"
    )
    watch_max_days: int = Field(
        default=365, ge=1, le=3650, description="the longest expiry a watch may be given (days)"
    )

    # ingest on Ray (issue 11): see pipeline/ray_runner.py and docs/SCALING.md
    runner: Literal["local", "ray"] = Field(
        default="local", description="ingest runner: local processes, or Ray actors"
    )
    ray_address: str = Field(
        default="", description="ray.init address (auto, host:port, ray://...); empty: local"
    )

    # HTTP ingest jobs shared by every server process (issue 11): governance/job_records.py
    ingest_job_stale_s: float = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="a queued or running HTTP ingest job whose process has not beaten for "
        "this long (seconds) is reported as failed (interrupted)",
    )

    @classmethod
    def load(cls, home: Path | str | None = None, **overrides: Any) -> Settings:
        """Settings for an engine home: keywords > FACEINDEX_* env > <home>/config.toml."""
        raw_home = home if home is not None else os.environ.get("FACEINDEX_HOME") or DEFAULT_HOME
        home_path = Path(raw_home).expanduser().resolve()
        file_values: dict[str, Any] = {}
        cfg = home_path / "config.toml"
        if cfg.is_file():
            try:
                file_values = tomllib.loads(cfg.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"{cfg}: {exc}") from exc
        env_set = {name for name in cls.model_fields if f"FACEINDEX_{name.upper()}" in os.environ}
        values = {k: v for k, v in file_values.items() if k not in env_set}
        values.update(overrides)
        values["home"] = home_path
        try:
            return cls(**values)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc

    @property
    def resolved_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite://{self.home / 'catalog.db'}"

    @property
    def resolved_index_url(self) -> str:
        return self.index_url or f"faiss://{self.home / 'index'}"

    def effective_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

"""Building the face models a pack declares: the one place that names concrete vision classes.

It lives beside what it builds, so the pipeline's workers and the engine both import it from
here and nothing in ``vision`` imports back up the pipeline.
"""

from __future__ import annotations

from faceindex.config import Settings
from faceindex.errors import ConfigError
from faceindex.vision.analyze import FaceAnalyzer
from faceindex.vision.base import Aligner, Detector, Embedder
from faceindex.vision.pack import DLIB_PACK, ModelPack, resolve_pack

__all__ = ["build_analyzer", "model_tag", "settings_pack"]


def settings_pack(settings: Settings) -> ModelPack:
    """The model pack the settings name (``model``: a built-in name or a pack directory),
    else the one the home records (so a home opens with its own model), else dlib."""
    from faceindex.model_record import recorded_source

    return resolve_pack(settings.model or recorded_source(settings.home) or DLIB_PACK.name)


def build_analyzer(
    settings: Settings, pack: ModelPack | None = None, *, threads: int = 0
) -> FaceAnalyzer:
    """The face models of ``pack`` (default: the settings'), configured by the settings.

    dlib's load its weights in ~0.5 s; ``threads`` bounds an ONNX pack's intra-op threads
    (0: ONNX Runtime's default, one per core).
    """
    pack = pack or settings_pack(settings)
    if pack.detector == "dlib":
        return _dlib(settings, threads)
    detector = _pack_detector(settings, pack, threads)
    aligner = _pack_aligner(pack)
    embedder = _pack_embedder(settings, pack, threads)
    return _analyzer(settings, detector, aligner, embedder, chip_size=pack.input_size)


def model_tag(settings: Settings, pack: ModelPack) -> str:
    """The model tag stored with every face: which weights, and how they were applied."""
    if pack.embedder == "dlib-resnet":
        from faceindex.vision.embed import descriptor_name

        return descriptor_name(mirror=settings.mirror, jitters=settings.jitters)
    return pack.descriptor_name(mirror=settings.mirror)


def _dlib(settings: Settings, threads: int = 0) -> FaceAnalyzer:
    from faceindex.vision.align import DlibAligner
    from faceindex.vision.detect import (
        BoundedDetector,
        CnnDetector,
        HogDetector,
        WholeImageDetector,
        bounded_fallback,
        probe_budget,
    )
    from faceindex.vision.embed import build_embedder
    from faceindex.vision.onnx.runtime import threads_per_worker

    threads = threads or threads_per_worker(settings.effective_workers(), settings.onnx_threads)
    cnn: Detector
    if settings.cnn_runtime == "onnx":
        from faceindex.vision.onnx.detector import OnnxCnnDetector

        cnn = OnnxCnnDetector(
            upsample=0,
            max_side=0,  # the policy below scales its input
            threads=threads,
            provider=settings.onnx_provider,
            cache_dir=settings.onnx_cache_dir,
        )
    else:
        cnn = CnnDetector(upsample=0, max_side=0)
    up = settings.detect_upsample
    detector: Detector
    probe: Detector | None = None  # None: probes detect as ingest does
    if settings.detector == "whole":
        detector = WholeImageDetector(HogDetector(upsample=2, max_side=0))
    elif settings.detector == "cnn":
        detector = BoundedDetector(
            cnn,
            max_pixels=settings.detect_cnn_max_pixels,
            max_scale=2.0**up,
            min_size=settings.min_face_size,
        )
    elif settings.detect_fallback:
        chain = bounded_fallback(
            cnn,  # the fallback policy scales its input
            upsample=up,
            max_side=settings.detect_max_side,
            min_size=settings.min_face_size,
            cnn_max_pixels=settings.detect_cnn_max_pixels,
        )
        detector = chain
        if settings.probe_detect_max_pixels:
            probe = probe_budget(chain, upsample=up, max_pixels=settings.probe_detect_max_pixels)
    else:
        detector = HogDetector(
            upsample=up, max_side=settings.detect_max_side, min_size=settings.min_face_size
        )
    embedder = build_embedder(
        settings.embedder_runtime,
        mirror=settings.mirror,
        jitters=settings.jitters,
        threads=threads,
        provider=settings.onnx_provider,
        cache_dir=settings.onnx_cache_dir,
    )
    return _analyzer(
        settings, detector, DlibAligner(), embedder, probe, chip_size=DLIB_PACK.input_size
    )


def _analyzer(
    settings: Settings,
    detector: Detector,
    aligner: Aligner,
    embedder: Embedder,
    probe: Detector | None = None,
    *,
    chip_size: int,
) -> FaceAnalyzer:
    return FaceAnalyzer(
        detector,
        aligner,
        embedder,
        thumbnail_size=settings.thumbnail_size,
        min_face_size=settings.min_face_size,
        detect_max_side=settings.detect_max_side,
        probe_detector=probe,
        chip_size=chip_size,
    )


def _pack_detector(settings: Settings, pack: ModelPack, threads: int) -> Detector:
    if pack.detector != "scrfd":
        raise ConfigError(f"pack {pack.name!r}: no detector of kind {pack.detector!r}")
    from faceindex.vision.detect import WholeImageDetector
    from faceindex.vision.scrfd import ScrfdDetector

    scrfd = ScrfdDetector(
        pack.file("detector"),
        side=pack.detector_input,
        score=pack.detector_score,
        normalisation=pack.detector_normalisation,
        outputs=pack.detector_outputs,
        min_size=settings.min_face_size,
        threads=threads,
    )
    # The pack's detector replaces dlib's chain; 'whole' still means pre-cropped portraits.
    return WholeImageDetector(scrfd) if settings.detector == "whole" else scrfd


def _pack_aligner(pack: ModelPack) -> Aligner:
    if pack.aligner != "similarity-5":
        raise ConfigError(f"pack {pack.name!r}: no aligner of kind {pack.aligner!r}")
    from faceindex.vision.arcface import SimilarityAligner

    return SimilarityAligner(pack.template, pack.input_size)


def _pack_embedder(settings: Settings, pack: ModelPack, threads: int) -> Embedder:
    if pack.embedder != "arcface":
        raise ConfigError(f"pack {pack.name!r}: no embedder of kind {pack.embedder!r}")
    from faceindex.vision.arcface import ArcFaceEmbedder

    return ArcFaceEmbedder(pack.file("embedder"), pack, mirror=settings.mirror, threads=threads)

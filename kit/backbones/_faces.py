"""The ``dlib_face`` embedder kind: rows are faces (any number per photo), each kept with its photo and box.

Only what is specific to faces lives here (the settings, how photos become face records, how a record becomes
rows); the cache, de-duplication, reassembly and progress are the shared pipeline's (``kit.embedding``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..faces import (BOX_FIELDS, CHIP_SIZE, DESCRIPTOR_DIM, FACE_COLUMNS, INSTALL, NO_FACE, RECORD_SIZE, FaceSettings,
                     crop_features, is_available, map_photos, processes_for)
from ._base import BackboneSpec, Kind, register_kind


@dataclass(frozen=True)
class FaceBackboneSpec(BackboneSpec):
    """A ``BackboneSpec`` that also carries ``FaceSettings`` (made by :func:`backbone`)."""

    settings: FaceSettings = field(default_factory=FaceSettings)


def backbone(*, detector="hog", upsample=1, keep="largest", crop_as_face=False, max_side=1024,
             jitter=0) -> FaceBackboneSpec:
    """The ``dlib_face`` backbone with other detector settings (see :class:`FaceSettings`).

    Examples
    --------
    >>> import kit
    >>> from kit import faces
    >>> spec = faces.backbone(crop_as_face=True)
    >>> spec.name, spec.feature_dim
    ('dlib_face', 128)
    >>> emb = kit.embed("face_crops/", backbone=spec)   # doctest: +SKIP
    """
    s = FaceSettings(detector=detector, upsample=upsample, keep=keep, crop_as_face=crop_as_face,
                     max_side=max_side, jitter=jitter).validated()
    return FaceBackboneSpec(name="dlib_face", source="dlib", handle="dlib_face_recognition_resnet_model_v1",
                            input_size=CHIP_SIZE, feature_dim=DESCRIPTOR_DIM,
                            description="dlib face detection + 5-point alignment + 128-d ResNet descriptor",
                            settings=s)


def settings_of(spec) -> FaceSettings:
    """The face settings of a backbone spec (defaults for the registered ``dlib_face``)."""
    return spec.settings if isinstance(spec, FaceBackboneSpec) else FaceSettings()


class DlibFaceKind(Kind):
    """Faces found, aligned and described by dlib; ``num_workers`` are processes (:func:`~kit.faces.map_photos`).

    A cached record is every face of the photo (``left, top, right, bottom, score, descriptor``, largest first);
    with ``keep="largest"`` only the first is a row. Descriptors are not L2-normalised (dlib's distances keep
    their meaning)."""

    source = "dlib"
    many_rows = True
    stage = "faces"
    empty_reason = NO_FACE

    def record_ok(self, spec, record):
        return record.size % RECORD_SIZE == 0 and bool(np.isfinite(record).all())
    table_columns = (FACE_COLUMNS[1:], {"face": "int64", "faces_in_photo": "int64", "left": "int64", "top": "int64",
                                        "right": "int64", "bottom": "int64", "score": "float64"})
    stat_names = {"rows": "faces", "empty": "no_face"}
    default_stats = {"processes": 0}

    def preprocessing(self, spec, options):
        return settings_of(spec).preprocessing()

    def offline(self, spec):
        return is_available()

    def load(self, spec, classifier):
        if classifier:
            return super().load(spec, classifier)
        return crop_features  # images taken as face crops

    def compute(self, spec, paths, options, progress, stats):
        if not is_available():
            raise ImportError(f"backbone {spec.name!r} needs dlib and the face models; run `{INSTALL}`")
        s = settings_of(spec)
        stats["processes"] = processes_for(len(paths), s, options.num_workers)
        for j, records, reason in map_photos(paths, s, options.num_workers, progress):
            yield j, (None if records is None else records.ravel()), reason

    def rows(self, spec, record):
        records = np.asarray(record, dtype=np.float32).reshape(-1, RECORD_SIZE)
        keep = min(len(records), 1 if settings_of(spec).keep == "largest" else len(records))
        table = [(k, len(records), *(int(v) for v in records[k, :4]), float(records[k, 4])) for k in range(keep)]
        return records[:keep, BOX_FIELDS:], table


register_kind(DlibFaceKind())
SPEC = BackboneSpec(
    name="dlib_face", source="dlib", handle="dlib_face_recognition_resnet_model_v1", input_size=CHIP_SIZE,
    feature_dim=DESCRIPTOR_DIM,
    description="faces: dlib HOG detection (upsample 1), 5-point alignment, 128-d ResNet descriptor (kit.faces)")

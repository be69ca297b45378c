"""Data to try the kit on, one concern per module:

- `kit.datasets.samples`: the built-in sample data, no network (`clothing`, `sample_folder`, `sample_faces`,
  `augmented_corpus` for a corpus of any size);
- `kit.datasets.archives`: safe zip/tar extraction (`extract_zip` for uploads), which never overwrites or
  deletes what the kit did not create;
- `kit.datasets.downloads`: public sets fetched over the network (`download`, `PUBLIC`), checksummed, failing
  fast offline with `DatasetUnavailableError`;
- `synthetic_identities`: generated MS1M-like face features (many identities, heavy-tailed sizes, varied
  spreads on the sphere) for scale tests and benchmarks, deterministic.

Every public name is re-exported here (``kit.datasets.clothing()``). Nothing is written at import; the kit never
writes into the user's own image folders.
"""
from ._archives import ImportReport, extract_zip
from ._downloads import PUBLIC, DatasetUnavailableError, PublicDataset, download
from ._samples import (CLOTHING_CLASSES, FACES_PER_PERSON, FACES_VERSION, SAMPLE_PER_CLASS, SAMPLE_VERSION,
                       augmented_corpus, clothing, sample_faces, sample_faces_info, sample_folder, sample_info)
from ._synthetic import synthetic_identities

__all__ = ["CLOTHING_CLASSES", "DatasetUnavailableError", "FACES_PER_PERSON", "FACES_VERSION", "ImportReport",
           "augmented_corpus",
           "PUBLIC", "PublicDataset", "SAMPLE_PER_CLASS", "SAMPLE_VERSION", "clothing", "download", "extract_zip",
           "sample_faces", "sample_faces_info", "sample_folder", "sample_info", "synthetic_identities"]

"""Privacy redaction: faces covered (blurred, pixelated or filled) in videos, photos and API answers.

``regions`` turns face boxes into head regions, ``cover`` hides a region of a picture, ``stage``
decides per frame which regions to cover (high recall: its own score threshold, tracks kept covered
through missed frames), ``photos`` writes redacted photos. Not to be confused with
:mod:`streamproc.redaction`, which hides passwords in URLs.
"""

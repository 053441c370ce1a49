"""Evidence is known by its bytes, bounded before it is read whole."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

import pytest

from gateway.errors import PayloadTooLarge
from gateway.repairs import evidence

PDF_BYTES = b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 17 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20 + b"\xff\xd9"
HTML_BYTES = b"<!DOCTYPE html><html><script>alert(1)</script></html>"


@pytest.mark.parametrize(
    ("data", "media"),
    [(PDF_BYTES, "application/pdf"), (PNG_BYTES, "image/png"), (JPEG_BYTES, "image/jpeg")],
)
def test_pdf_png_jpeg_are_accepted_by_content(data: bytes, media: str) -> None:
    found = evidence.check_file("scan.bin", data, 1024)
    assert (found.media_type, found.size, found.file_name) == (media, len(data), "scan.bin")
    assert len(found.sha256) == 64


@pytest.mark.parametrize(
    "data",
    [
        HTML_BYTES,
        b"%PDF-1.7\n<html><script>x</script>",  # a PDF head without its end
        b"%PDF-1.7\n<html><body>x</body></html>\n%%EOF",  # markup a sniffer would render
        b"%PDF-x\n%%EOF",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # no IHDR, no IEND
        b"GIF89a" + b"\x00" * 40,
    ],
)
def test_anything_else_is_refused_whatever_its_name(data: bytes) -> None:
    with pytest.raises(evidence.EvidenceTypeRefused) as refused:
        evidence.check_file("营业执照.pdf", data, 1024)
    assert refused.value.status == 415


def test_names_are_cleaned_and_bounded() -> None:
    assert evidence.clean_name("../../etc/passwd\x00\u202e.pdf") == "passwd.pdf"
    assert evidence.clean_name("C:\\docs\\证明.pdf") == "证明.pdf"
    assert len(evidence.clean_name("a" * 500)) == 200


def test_sizes_and_counts() -> None:
    with pytest.raises(evidence.EvidenceTooLarge):
        evidence.check_file("big.pdf", PDF_BYTES, len(PDF_BYTES) - 1)
    with pytest.raises(evidence.EvidenceInvalid):
        evidence.check_file("empty.pdf", b"", 1024)
    with pytest.raises(evidence.EvidenceInvalid):
        evidence.check_count(6, 5)
    with pytest.raises(evidence.EvidenceInvalid):
        evidence.check_count(0, 5)
    evidence.check_count(5, 5)


def test_base64_too_long_is_refused_before_decoding() -> None:
    text = base64.b64encode(b"x" * 2000).decode()
    with pytest.raises(evidence.EvidenceTooLarge):
        evidence.decode_base64("big.pdf", text, 1000)
    with pytest.raises(evidence.EvidenceInvalid):
        evidence.decode_base64("bad.pdf", "not base64!", 1000)
    assert evidence.decode_base64("ok.pdf", base64.b64encode(PDF_BYTES).decode(), 1000) == PDF_BYTES


def test_a_stream_is_stopped_at_its_limit() -> None:
    pulled: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for n in range(10_000):
            pulled.append(n)
            yield b"x" * 1024

    with pytest.raises(PayloadTooLarge):
        asyncio.run(evidence.read_bounded(endless(), 4096))
    assert len(pulled) == 5  # stopped at the chunk that passed the limit

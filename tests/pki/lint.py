"""pkilint (RFC 5280 / RFC 6960 validators) through its Python API."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pkilint import document, loader, pkix, validation
from pkilint.bin import lint_pkix_signer_signee_cert_chain as chain_linter
from pkilint.pkix import certificate, crl, extension, name, ocsp
from pkilint.validation import ValidationFindingSeverity

BLOCKING = {ValidationFindingSeverity.FATAL, ValidationFindingSeverity.ERROR}


@dataclass(frozen=True)
class Finding:
    severity: str
    code: str
    message: str | None
    path: str

    def __str__(self) -> str:
        message = f": {self.message}" if self.message else ""
        return f"{self.severity} {self.code} @ {self.path}{message}"


@cache
def _certificate_validator() -> validation.ValidatorContainer:
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


@cache
def _crl_validator() -> validation.ValidatorContainer:
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )


@cache
def _ocsp_validator() -> validation.ValidatorContainer:
    return ocsp.create_pkix_ocsp_response_validator_container(
        [
            ocsp.create_response_decoder(),
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [],
    )


def _findings(results: list[validation.ValidationResult]) -> list[Finding]:
    return [
        Finding(
            severity=description.finding.severity.name,
            code=description.finding.code,
            message=description.message,
            path=result.node.path,
        )
        for result in results
        for description in result.finding_descriptions
    ]


def lint_certificate(der: bytes) -> list[Finding]:
    doc = loader.load_der_certificate(der, "certificate")
    return _findings(_certificate_validator().validate(doc.root))


def lint_crl(der: bytes) -> list[Finding]:
    doc = loader.load_der_crl(der, "crl")
    return _findings(_crl_validator().validate(doc.root))


def lint_ocsp_response(der: bytes) -> list[Finding]:
    doc = loader.load_der_ocsp_response(der, "ocsp")
    return _findings(_ocsp_validator().validate(doc.root))


def lint_chain(issuer_der: bytes, subject_der: bytes) -> list[Finding]:
    """Issuer/subject checks: name chaining, AKI = issuer SKI, signature verification."""
    collection: dict[str, document.Document] = {}
    issuer = loader.load_der_certificate(issuer_der, "issuer", "issuer", collection)
    collection["issuer"] = issuer
    subject = loader.load_der_certificate(subject_der, "subject", "subject", collection)
    collection["subject"] = subject
    decoders = chain_linter.create_decoder_validation_container()
    results = decoders.validate(issuer.root) + decoders.validate(subject.root)
    results += chain_linter.create_issuer_validation_container().validate(issuer.root)
    results += chain_linter.create_subject_validation_container().validate(subject.root)
    return _findings(results)


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if ValidationFindingSeverity[f.severity] in BLOCKING]


def report(label: str, findings: list[Finding]) -> None:
    """Print the non-blocking findings so that ``pytest -s`` shows them."""
    for finding in findings:
        print(f"[pkilint] {label}: {finding}")

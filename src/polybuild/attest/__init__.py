"""Attestations as buildx and BuildKit make them: the flags (options), in-toto statements
(intoto), SLSA provenance predicates (provenance), attestation manifests in an index
(manifests) and reading them back (inspect)."""

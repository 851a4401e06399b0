"""The wire messages (`siliconbench.telemetry.v1`), imported here once for the whole code base.

Only this module and `siliconbench.core.rpc` import the generated bindings (tests/test_layering.py), so a
new contract version is one import to change. This module pulls in protobuf only, never grpc: the load
generator's worker processes import it.
"""

from __future__ import annotations

from siliconbench.telemetry.v1 import telemetry_pb2 as pb

__all__ = ["GRANTS_METADATA", "OFFERS_METADATA", "pb"]

# In a collector's initial metadata: it admits batches by credit (Offer, then Grant, then Batch; see the .proto).
GRANTS_METADATA = ("siliconbench-flow", "grants")
# In an agent's call metadata: it offers every batch and sends it only once granted, when the collector
# admits by credit. The collector then reads the stream without reserving room for an unannounced batch.
OFFERS_METADATA = ("siliconbench-flow", "offers")

"""The profile stage: devices, the protocol client, the results store, reports (`edgeprune.profile(...)`)."""
from edgeprune._stage import make_stage

make_stage(__name__, "edgeprune.profile.api", "profile", ())

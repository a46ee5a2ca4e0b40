"""The retention dashboard: a Streamlit multipage app started by ``churnops dashboard``.

Pages (``pages/``) show what the store and the registry hold through stage functions
(:mod:`churnops.batch.risk`, :mod:`churnops.monitoring.store`, :mod:`churnops.registry`,
:mod:`churnops.campaign`); :mod:`reads` caches those calls per session-independent key,
:mod:`access` signs people in with API keys, :mod:`launch` starts the server. No page
holds SQL, and nothing here is imported by the stages.
"""

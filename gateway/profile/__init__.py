"""The production profile: what `XYD_PROFILE=production` refuses to start with.

rules.py judges the settings alone (one plain function on Settings per rule);
servers.py the two that need a server: the demo kit's accounts in the database
(repository.py) and Redis's persistence. check.py runs them all and gathers
every violation at once; `ProfileRefused` carries the list.
"""

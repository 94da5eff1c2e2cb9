"""Fuzzers: random bytes on the wire and random argv for every command.

``wire`` drives many connections of malformed RESP and inline requests at a
real Keel process while a checked workload runs beside them; ``argv``
builds random argument lists for each command in ``COMMAND``. The tests
(``test_protocol_fuzz``, ``test_command_fuzz``) run a short CI size and a
``--soak`` size; ``test_found`` holds one regression test per bug found.
"""

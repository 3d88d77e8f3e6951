"""The plugin contract (`cplugins check cplugins-deeplake`), one test per check."""
from cplugins.testing import contract_tests

test_contract = contract_tests("cplugins-deeplake")

"""Rating engine: what a call costs, how long it may last, and rate-deck files.

The engine core is database-free, one small module per concern:
  cost.py      Tariff, ShortCallCharge, billed_seconds, call_cost: the one formula
  index.py     PrefixIndex (longest prefix, rate, rate_batch), get_index per sheet version
  bundles.py   CountriesAndMinutes, CountryNotOpened, split_call, rate_call, share_bundle
  duration.py  LiveCall, max_call_seconds, shared_deadlines: the AMI watcher's cut-off times
  deck.py      parse_deck, export_deck: CSV rate decks
  micro.py     the formula in exact integers, for the fast paths
  countries.py country_for_prefix
models.py holds the tables. Import from the modules: this package imports nothing on purpose,
so loading the models does not load numpy or the deck parser. Rules: docs/rating.md.
"""

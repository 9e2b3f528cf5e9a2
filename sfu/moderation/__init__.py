"""Safety and moderation: rules, device identities, reports with server-captured evidence, strikes,
bans, the moderator console and its API.

Import from the submodules (this package imports nothing, so the classifier workers that import
:mod:`.sampler` never load the database layer):

- :mod:`.settings`: :class:`~.settings.ModerationSettings`, every setting with its default
- :mod:`.service`: :class:`~.service.ModerationService`, the one moderation object the server holds
  (``await ModerationService.open(settings, ...)``)
- :mod:`.api`: :func:`~.api.setup_moderation_routes`, the console and its JSON API
- :mod:`.identity`, :mod:`.rules`, :mod:`.policy`, :mod:`.records`: identities, rules, pure policy, values
- :mod:`.devices`: the ``sfu_device`` cookie on HTTP responses; :mod:`.capture`: evidence pictures
  from a publisher's video; :mod:`.recent`: whom each person may still report
"""

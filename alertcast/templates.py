"""Message templates: sandboxed Jinja2, package defaults, per-channel overrides.

Templates are written by operators, not by alertcast's authors, and they see
text from outside feeds, so they run in Jinja2's immutable sandbox (no
attribute tricks, no mutation, no I/O) with :class:`jinja2.StrictUndefined`:
a misspelt field is an error, never a silently empty line in an emergency
message. Escaping follows the output format: the same template file is
rendered with autoescape on for HTML channels (Telegram, the HTML part of an
e-mail) and off for plain-text ones, and the helpers ``b()``, ``i()``,
``link()`` and ``icon()`` produce markup or plain text accordingly.

Where a template is looked for, first match wins (``<lang>`` is tried as the
full tag, ``es-MX``, then as its primary subtag, ``es``):

1. ``<channels dir>/templates/<channel name>/<name>.<lang>.j2``
2. ``<channels dir>/templates/<channel kind>/<name>.<lang>.j2``
3. ``alertcast/templates/<channel kind>/<name>.<lang>.j2`` (package)
4. ``alertcast/templates/<name>.<lang>.j2`` (package defaults, es and en)

Problems are caught at ``alertcast check`` time by :func:`validate_templates`,
which compiles every override and renders it against sample alerts, so an
operator learns about a broken template from the check, with file and line,
and not from a failed send.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from jinja2 import meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from alertcast.channel_profiles import CHANNEL_KINDS, profile_problems
from alertcast.errors import AlertcastError, ConfigProblem

if TYPE_CHECKING:
    from alertcast.config import Config

__all__ = [
    "PACKAGE_TEMPLATES",
    "TEMPLATE_NAMES",
    "ResolvedTemplate",
    "TemplateError",
    "TemplateSet",
    "validate_templates",
]

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES: tuple[str, ...] = (
    "weather",
    "earthquake",
    "health",
    "road",
    "update",
    "cancel",
    "manual",
    "default",
)
"""The templates alertcast ships in Spanish and English."""

TEMPLATE_SUFFIX = ".j2"
_FILE_NAME = re.compile(
    r"^(?P<name>[a-z0-9_-]+)\.(?P<lang>[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)\.j2$"
)


class TemplateError(AlertcastError):
    """A template is missing, does not compile, or failed while rendering.

    ``file`` and ``line`` say where (line is None when the problem has no line,
    such as a template that does not exist).
    """

    def __init__(self, reason: str, file: str, line: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ResolvedTemplate:
    """A template file chosen for a render."""

    name: str
    language: str
    """The language tag in the file name (``es``, ``en``, ``es-MX``...)."""
    path: Path
    loader_name: str


class TemplateSet:
    """The templates available to renders: the package defaults plus a folder of overrides.

    ``overrides`` is the configuration's ``channels/templates`` folder (or
    None). Compiled templates are cached and reloaded when their file changes.
    """

    def __init__(self, overrides: Path | None = None) -> None:
        self.overrides = overrides.resolve() if overrides is not None else None
        roots: dict[str, jinja2.BaseLoader] = {
            "package": jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES))
        }
        if self.overrides is not None:
            roots["config"] = jinja2.FileSystemLoader(str(self.overrides))
        loader = jinja2.PrefixLoader(roots, delimiter="/")
        self._environments = {
            markup: _environment(loader, autoescape=markup == "html") for markup in ("text", "html")
        }

    def candidates(
        self, name: str, languages: Sequence[str], channel_name: str, kind: str
    ) -> Iterable[tuple[Path, str, str]]:
        """Every ``(path, loader name, language)`` where ``name`` may live, in lookup order."""
        tags = _language_tags(languages)
        folders: list[tuple[Path, str]] = []
        if self.overrides is not None:
            for owner in dict.fromkeys((channel_name, kind)):
                folders.append((self.overrides / owner, f"config/{owner}/"))
        folders.append((PACKAGE_TEMPLATES / kind, f"package/{kind}/"))
        folders.append((PACKAGE_TEMPLATES, "package/"))
        for tag in tags:
            for folder, prefix in folders:
                file_name = f"{name}.{tag}{TEMPLATE_SUFFIX}"
                yield folder / file_name, prefix + file_name, tag

    def resolve(
        self, name: str, languages: Sequence[str], channel_name: str, kind: str
    ) -> ResolvedTemplate:
        """The template ``name`` in the first of ``languages`` that has one.

        Raises TemplateError naming where it was looked for when none exists.
        """
        looked: list[str] = []
        for path, loader_name, tag in self.candidates(name, languages, channel_name, kind):
            if path.is_file():
                return ResolvedTemplate(name, tag, path, loader_name)
            looked.append(str(path))
        tags = ", ".join(_language_tags(languages)) or "(none)"
        raise TemplateError(
            f"no template {name!r} for languages {tags}; looked for {looked[0]} and"
            f" {len(looked) - 1} other place(s)",
            looked[0] if looked else name,
        )

    def has(self, name: str, language: str, channel_name: str, kind: str) -> bool:
        """True when ``name`` exists in ``language`` (full tag or primary subtag)."""
        return any(
            path.is_file() for path, _, _ in self.candidates(name, [language], channel_name, kind)
        )

    def template(self, resolved: ResolvedTemplate, markup: str) -> jinja2.Template:
        """The compiled template; raises TemplateError with file and line on a syntax error."""
        try:
            return self._environments[markup].get_template(resolved.loader_name)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                exc.message or "syntax error", str(resolved.path), exc.lineno
            ) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"template {exc.name!r} not found", str(resolved.path)) from exc

    def render(self, resolved: ResolvedTemplate, markup: str, context: Mapping[str, Any]) -> str:
        """Render with ``context``; any failure becomes a TemplateError with file and line."""
        compiled = self.template(resolved, markup)
        try:
            return compiled.render(context)
        except jinja2.TemplateError as exc:
            file, line = _template_location(exc, resolved)
            raise TemplateError(_describe(exc), file, line) from exc
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            file, line = _template_location(exc, resolved)
            raise TemplateError(f"{type(exc).__name__}: {exc}", file, line) from exc


@lru_cache(maxsize=32)
def template_set(overrides: Path | None) -> TemplateSet:
    """A shared :class:`TemplateSet` per overrides folder (compiled templates are cached in it)."""
    return TemplateSet(overrides)


def _language_tags(languages: Sequence[str]) -> list[str]:
    tags: list[str] = []
    for language in languages:
        if not language:
            continue
        tags.append(language)
        primary = language.split("-")[0].lower()
        if primary != language:
            tags.append(primary)
    return list(dict.fromkeys(tags))


def _finalize(value: Any) -> Any:
    """None prints as nothing: an absent CAP field leaves no "None" in a message."""
    return "" if value is None else value


def _environment(loader: jinja2.BaseLoader, *, autoescape: bool) -> jinja2.Environment:
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=True,
        finalize=_finalize,
    )
    env.filters["sentence"] = _sentence
    return env


_SENTENCE_END = re.compile(r"[.!?…:;][\"'”’»)\]]*$")


def _sentence(value: Any) -> Any:
    """The text with a full stop at its end unless it already ends a sentence.

    "(choque por alcance)" gets one; "¡Cuidado!" and "«Evacúe.»" do not.
    """
    if value is None or value == "":
        return ""
    text = value if isinstance(value, Markup) else str(value)
    stripped = text.rstrip()
    if not stripped or _SENTENCE_END.search(stripped):
        return stripped
    return stripped + "."


def _describe(exc: jinja2.TemplateError) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        hint = (
            "; for a parameter an alert may lack, write parameters.get('name')"
            if "dict object" in (exc.message or "")
            else ""
        )
        return f"{exc.message}: the template uses a field that does not exist{hint}"
    return exc.message or type(exc).__name__


def _template_location(exc: BaseException, resolved: ResolvedTemplate) -> tuple[str, int | None]:
    """The template file and line the failure happened on (an included file when it was there)."""
    if isinstance(exc, jinja2.TemplateSyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.endswith(TEMPLATE_SUFFIX):
            return frame.filename, frame.lineno
    return str(resolved.path), None


# --------------------------------------------------------------------------- helpers


def markup_helpers(markup: str, channel_kind: str) -> dict[str, Callable[..., Any]]:
    """The functions templates call to format text: the same call gives HTML or plain text."""
    html = markup == "html"

    def wrap(tag: str) -> Callable[[Any], Any]:
        def apply(value: Any) -> Any:
            if value is None or value == "":
                return ""
            if html:
                # The tag is one of ours ("b", "i"); the value is escaped by the % operator.
                return Markup(f"<{tag}>%s</{tag}>") % value  # noqa: S704
            return str(value)

        return apply

    def link(url: Any, label: Any = None) -> Any:
        if not url:
            return ""
        if html:
            return Markup('<a href="%s">%s</a>') % (url, label or url)
        return f"{label}: {url}" if label else str(url)

    def icon(symbol: str) -> str:
        # An emoji turns a whole SMS into UCS-2 and more than halves what fits.
        return "" if channel_kind == "sms" else symbol

    return {"b": wrap("b"), "i": wrap("i"), "link": link, "icon": icon}


# --------------------------------------------------------------------------- validation


def validate_templates(config: Config) -> list[ConfigProblem]:
    """Every problem with the configuration's templates, each with its file and line.

    What is checked:

    * every ``*.j2`` under ``channels/templates`` sits in a folder named after a
      configured channel or a channel kind and is named ``<name>.<lang>.j2``;
    * it compiles (syntax errors, unknown filters or tests, missing includes);
    * it uses only fields renders provide: every variable name is checked
      statically, in every branch, and fields of ``road``, ``quake`` and
      ``alert`` too;
    * it renders without error against sample alerts (an Actual alert with
      every field, an exercise Update, a Cancel without info, a minimal alert
      with only required fields) in the output format of its channel, and on
      Telegram the result is HTML Telegram accepts;
    * a template a channel names in ``options.template`` exists in the
      channel's language;
    * the rendering options of every channel (limits, languages, link, split
      policy) have the right types and values
      (:func:`alertcast.channel_profiles.profile_problems`).
    """
    from alertcast.render import sample_contexts

    problems: list[ConfigProblem] = []
    folder = config.templates_dir
    names = {channel.name: channel for channel in config.channels}
    templates = TemplateSet(folder if folder.is_dir() else None)
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            if path.is_dir() or path.name.startswith("."):
                continue
            relative = path.relative_to(folder)
            if len(relative.parts) != 2:
                problems.append(
                    ConfigProblem(
                        str(path),
                        "",
                        "templates live in templates/<channel or kind>/<name>.<lang>.j2",
                    )
                )
                continue
            owner, file_name = relative.parts
            match = _FILE_NAME.match(file_name)
            if match is None:
                problems.append(
                    ConfigProblem(
                        str(path), "", "file name must be <name>.<lang>.j2, e.g. road.es.j2"
                    )
                )
                continue
            if owner in names:
                kind = names[owner].kind
            elif owner in CHANNEL_KINDS:
                kind = owner
            else:
                problems.append(
                    ConfigProblem(
                        str(path),
                        "",
                        f"folder {owner!r} is neither a configured channel nor a channel kind",
                    )
                )
                continue
            resolved = ResolvedTemplate(
                match.group("name"), match.group("lang"), path, f"config/{owner}/{file_name}"
            )
            problems.extend(_check_file(templates, resolved, kind, sample_contexts))
    for channel in config.channels:
        problems.extend(profile_problems(channel))
        wanted = channel.options.get("template")
        if not isinstance(wanted, str) or not wanted:
            continue
        language = channel.options.get("language")
        languages = [language] if isinstance(language, str) and language else ["es", "en"]
        for tag in languages:
            if not templates.has(wanted, tag, channel.name, channel.kind):
                problems.append(
                    ConfigProblem(
                        str(channel.file),
                        "options.template",
                        f"no template {wanted!r} in {tag} for this channel"
                        f" (add {folder / channel.name / f'{wanted}.{tag}.j2'})",
                    )
                )
    problems.extend(_route_template_problems(config, templates))
    return problems


def _route_template_problems(config: Config, templates: TemplateSet) -> list[ConfigProblem]:
    """A template a route names must exist for each of its channels, in es or en at least."""
    problems: list[ConfigProblem] = []
    channels = {channel.name: channel for channel in config.channels}
    rules_file = str(config.rules_file) if config.rules_file else "rules.toml"
    for route in config.routes.routes:
        if not route.template:
            continue
        for name in route.channels:
            channel = channels.get(name)
            if channel is None:
                continue  # an unknown channel is reported by the rules loader
            if not any(
                templates.has(route.template, tag, channel.name, channel.kind)
                for tag in ("es", "en")
            ):
                problems.append(
                    ConfigProblem(
                        rules_file,
                        f"{route.path}.template",
                        f"no template {route.template!r} for channel {name!r} in es or en",
                    )
                )
    return problems


def _problem(error: TemplateError) -> ConfigProblem:
    return ConfigProblem(error.file, f"line {error.line}" if error.line else "", error.reason)


def _check_file(
    templates: TemplateSet,
    resolved: ResolvedTemplate,
    kind: str,
    sample_contexts: Callable[[str, str, str], list[dict[str, Any]]],
) -> list[ConfigProblem]:
    markups = (
        ("text", "html") if kind == "email" else ("html",) if kind == "telegram" else ("text",)
    )
    try:
        source = resolved.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [ConfigProblem(str(resolved.path), "", f"cannot be read: {exc}")]
    for markup in markups:
        try:
            templates.template(resolved, markup)
        except TemplateError as exc:
            return [_problem(exc)]
    samples = sample_contexts(kind, "html" if "html" in markups else "text", resolved.language)
    problems = _static_problems(templates, resolved, source, samples[0])
    if problems:
        return problems
    from alertcast.text_safety import telegram_html_problems

    for markup in markups:
        for context in sample_contexts(kind, markup, resolved.language):
            try:
                output = templates.render(resolved, markup, context)
            except TemplateError as exc:
                return [_problem(exc)]
            if kind == "telegram":
                for issue in telegram_html_problems(output)[:3]:
                    problems.append(
                        ConfigProblem(
                            str(resolved.path), "", f"renders HTML Telegram refuses: {issue}"
                        )
                    )
                if problems:
                    return problems
    return problems


def _static_problems(
    templates: TemplateSet, resolved: ResolvedTemplate, source: str, sample: Mapping[str, Any]
) -> list[ConfigProblem]:
    """Names and fields used in any branch that no render provides."""
    env = templates._environments["text"]
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return [ConfigProblem(str(resolved.path), f"line {exc.lineno}", exc.message or "syntax")]
    undeclared = meta.find_undeclared_variables(tree)
    known = set(sample) | set(env.globals)
    problems: list[ConfigProblem] = []
    reported: set[str] = set()
    for node in tree.find_all(nodes.Name):
        if node.ctx != "load" or node.name in known or node.name not in undeclared:
            continue
        if node.name in reported:
            continue
        reported.add(node.name)
        problems.append(
            ConfigProblem(
                str(resolved.path),
                f"line {node.lineno}",
                f"unknown field {node.name!r}; renders provide: {', '.join(sorted(sample))}",
            )
        )
    for attribute in tree.find_all(nodes.Getattr):
        target = attribute.node
        if not isinstance(target, nodes.Name) or target.name not in ("road", "quake", "alert"):
            continue
        value = sample.get(target.name)
        if isinstance(value, Mapping) and attribute.attr not in value:
            problems.append(
                ConfigProblem(
                    str(resolved.path),
                    f"line {attribute.lineno}",
                    f"unknown field {target.name}.{attribute.attr};"
                    f" {target.name} has: {', '.join(sorted(value))}",
                )
            )
    return problems

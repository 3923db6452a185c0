"""First-person narration read as third person: "Greta here. My son Lukas ..." becomes "Greta here. Greta's son
Lukas ...", so that the extractor, which learnt relations between named and described people, reads the narrator
as the person the story introduced.

In a first-person story "I", "me" and "my" all stand for the narrator. That is English, not a story's domain, so
it is a rule rather than something to learn; only finding the narrator's name needs care. A story is rewritten
only when it introduces its narrator by name ("I'm Grace", "My name is Mateus", "Greta here", "This is Ana", a
byline "My Family, by Tomás", "Diary of Beatriz", "Posted by Jun", "I (29F, Emily)", "From: Kate Whitaker") or
signs with it ("... — Olivia", "Love,\nAnanya", "Your loving Miriam", a name alone closing a letter); without a
name (or with "my friend Zoe" told by nobody in the family) it is left as it was. Quoted speech is left alone:
there "my" is the speaker's ("This is my son," Tom said). A letter's "you" is the one it is written to ("Dear
Ann,", "To: Ann"). In a chat written as "Name: ..." lines, each line's "I" is its speaker and its "you" the one
it calls by name, else the one who spoke before. An interview's "A:" lines are the interviewee's and its "Q:"
lines' "you" the interviewee; a voice message (one quotation) is its caller's words to the one it calls.

The rewrite keeps the text's sentences one for one, so a fact read from the rewritten text can cite the sentence
it came from as the author wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import chain

_NAME = r"(?P<name>[A-Z][^\W\d_]+(?:-[A-Z][^\W\d_]+)?)"
_APOSTROPHE = "['’]"
# capitalised words that follow "I'm", stand before "here" or close a letter without being a name
_NOT_NAMES = set(
    "A An All Also Always And But Finally Here Honestly How Just Kind Literally Never Not Now Okay Ok Really So "
    "Sorry Still Sure The Then This Very Well What Who Yes No Hi Hello Hey Dear Me My Our We Monday Tuesday "
    "Wednesday Thursday Friday Saturday Sunday Christmas Easter Mr Mrs Ms Miss Dr Diary Reddit "
    "Merry Happy Thanks Cheers Love Best Regards Sincerely Yours Greetings Congratulations Bye Goodbye Hugs Kisses "
    "Xx Xo Xoxo".split()
)
# "hey Deshawn, it's Jolene", "Howdy, all! Janet here"
_GREETING = r"(?:(?:[Hh]i|[Hh]ello|[Hh]ey|[Hh]owdy)(?:,? (?:[A-Z][^\W\d_]+|all|everyone|y'all))?\W+)?"
# how a story introduces its narrator near its start; each names the narrator as "name"
_INTRODUCTIONS = (
    re.compile(rf"\bI{_APOSTROPHE}m {_NAME}(?![\w'’-])"),
    re.compile(rf"\bI am {_NAME}(?![\w'’-])"),
    re.compile(rf"\bI \((?:[^()\n]*?, ?)?{_NAME}(?=[,)])"),  # "So I (Andrea) married into ...", "I (29F, Emily)"
    # "Me: Ryan, 26M.", "Me (Ryan) ...", "Me, Kofi, I married ...", "Giorgos speaking: ..."
    # (not "Me, Tom and Ann went ...": a list)
    re.compile(rf"(?:^|[.!?\n]\s*)\W*[Mm]e(?::| \() ?{_NAME}(?: [A-Z][\w'’-]+){{0,3}}(?=[,.)\n])"),
    re.compile(rf"(?:^|[.!?\n]\s*)\W*[Mm]e, {_NAME}, I\b"),
    re.compile(rf"(?:^|[.!?,(\[]\s*){_NAME} speaking\s*[:,)\]—–-]"),
    re.compile(rf"\b[Mm]y name(?: is|{_APOSTROPHE}s) {_NAME}(?![\w'’-])"),
    re.compile(rf"\b[Cc]all me {_NAME}(?![\w'’-])"),
    # "Greta here, quick one", "hi it's Dawn, ...", but not "Posting here because ..."
    re.compile(rf"^\W*{_GREETING}(?:[Ii]t{_APOSTROPHE}s |[Tt]his is )?{_NAME} here(?=\s*[,.!:;—–-]|\s*$)"),
    re.compile(rf"^\W*{_GREETING}[Ii]t{_APOSTROPHE}s {_NAME}(?![\w'’-])"),
    re.compile(rf"^\W*{_GREETING}(?:[A-Za-z]+,? ){{0,2}}[Tt]his is {_NAME}(?![\w'’-])(?! is\b)"),  # "OK so this is"
    # a byline after a title: "My Family, by Tomás Herrera", "Our Summer by Sakura Tanaka"
    re.compile(rf"^\W*(?:[A-Z][\w'’]*[ ,:]+){{1,6}}by {_NAME}(?![\w'’-])"),
    # whose diary, post or letter it is: "Diary of Beatriz, June 12.", "Posted by Jun:", "Leah's journal"
    re.compile(
        rf"^\W*(?:[A-Z][\w'’]* ){{0,3}}(?:[Dd]iary|[Jj]ournal|[Bb]log|[Nn]otebook|[Ll]etter) (?:of|by|from) {_NAME}"
    ),
    re.compile(rf"^\W*{_NAME}{_APOSTROPHE}s (?:[Dd]iary|[Jj]ournal|[Bb]log|[Nn]otebook|[Nn]otes)\b"),
    # a social-media post under its poster's name: "Sarah O'Neill\nYesterday at 17:02 · Salthill", "Aisha
    # Rahman\n📍 Amman", "Lucía Herrera\n2 hrs · 🌎"
    re.compile(
        rf"^\s*{_NAME}(?: [A-Z][\w'’-]+){{0,2}}[ \t]*\n[^\n]*"
        r"(?:·|📍|\b\d+ ?(?:hrs?|mins?)\b|\b(?:Yesterday|Just now)\b|\bat \d{1,2}[:.]\d\d)"
    ),
    re.compile(
        rf"\b(?:[Pp]osted|[Ww]ritten|[Ss]ent|[Tt]yped(?: up)?|[Cc]aptions|[Nn]otes|[Rr]ecorded|[Cc]ompiled) by "
        rf"{_NAME}(?![\w'’-])"
    ),
    # an email's header: "From: Kate Whitaker"
    re.compile(rf"^[ \t]*From:[ \t]*{_NAME}(?![\w'’-])", re.M),
    # what someone calls the narrator: "she still calls me her little Anika"
    re.compile(rf"\b(?:[Cc]alls|[Cc]alled) me (?:(?:his|her|their|our) )?(?:[a-z]+ )?{_NAME}(?![\w'’-])"),
)
# a signature at the end of a post, a note or a letter: "... without asking. — Olivia", "-Noelani", "— Will
# (Tucson)"; nothing but the question may follow it (a dateline, "KRAKÓW — Stanisław Nowak, 80, ...", is no
# signature)
_SIGNATURE = re.compile(rf"(?:^|\s)(?:[—–]|--?) ?{_NAME}")
# what may follow the name on its line: a surname or an initial, where the writer is ("in Tulsa", ", Fed Up in
# Austin"), a note in brackets; then the question alone
_SIGNATURE_END = re.compile(
    r"(?: [A-Z][\w'’-]*\.?)?(?:(?:,| in| from| of)[ \t][^\n.!?]{1,50})?(?: ?\([^)]*\))?[.!]?\s*(?:[A-Z][^.!?]*\?)?\s*"
)
# an advice column's pseudonym with the name in brackets: "- Dad in Denver (Mike)", "- Caught in the Middle
# (Kelsey), Omaha"
_SIGNED_ALIAS = re.compile(rf"(?:^|\n)[ \t]*(?:[—–]|--?)[ \t]*[^\n()]{{1,60}}\({_NAME}\)[^\n()]{{0,40}}$", re.M)
# how a letter, an email or a card is closed before its writer's name: "Love,", "Warm regards,", "Your loving",
# "Your affectionate friend,", "Baci,"
_CLOSING = (
    r"(?:(?:[Ll]ots of|[Aa]ll (?:my|our)|[Mm]uch|[Ww]ith|[Ss]ending)\s+)?[Ll]ove(?:\s+(?:always|you|from))?|"
    r"(?:[Ww]arm(?:est)?|[Kk]ind(?:est)?|[Bb]est)\s+(?:regards|wishes)|[Rr]egards|[Bb]est|[Cc]heers|"
    r"[Tt]hanks(?:\s+again)?|[Tt]hank\s+you|[Ss]incerely|[Yy]ours(?:\s+(?:truly|sincerely|faithfully|ever))?|"
    r"[Hh]ugs(?:\s+and\s+kisses)?|[Kk]isses|[Tt]ake\s+care|[Ss]ee\s+you(?:\s+soon)?|[Xx]{1,3}|[Xx]o(?:xo)?|"
    r"[Bb]aci|[Bb]esos|[Bb]isous|[Aa]brazos|[Cc]iao|[Yy]our\s+(?:[a-z]+\s+){0,2}[a-z]+"
)
# a sign-off: a closing and a name at a line's end ("Love,\nAnanya", "... to anyone. Baci, Chiara", "Kate x"), or in
# a letter a name on a line of its own ("Margit")
_SIGN_OFF = re.compile(
    rf"(?:^|(?<=[.!?])(?P<inline>[ \t]+))[ \t]*(?:(?P<closing>{_CLOSING})[,!.]?\s+)?{_NAME}(?:[ \t]+[A-Z][\w'’-]+)?"
    r"(?:,?[ \t]*(?:[xX]{1,3}|[xX][oO]))?[ \t]*[.!]?[ \t]*$",
    re.M,
)
# how a letter, an email or a message opens: a salutation ("Dear Ann,", "Hi Priya,", "My dearest Louisa,") or
# a header line ("Subject: ...", "From: ...")
_SALUTATION = r"(?:Dear(?:est)?|My dear(?:est)?|Hi|Hiya|Hello|Hey|Howdy|Greetings|Ciao|Hola)"
_LETTER = re.compile(rf"^[ \t]*(?:{_SALUTATION}\b|(?:Subject|Re|From|To|Date|Sent)[ \t]*:)", re.M)
# whom a letter is written to: "Dear brother Samuel," ("brother" is the writer's word for him), "To: Ann" in an
# email's header, "(Sent to Thandi.)"
_READER = _NAME.replace("name", "reader")
_ADDRESSED = (  # each with how far into the text it is looked for
    (
        re.compile(rf"^[ \t]*{_SALUTATION}[ \t]+(?P<kin>(?:[a-z]+[ \t]+){{1,2}})?{_READER}[ \t]*(?:[,!:—–-]|$)", re.M),
        250,
    ),
    (re.compile(rf"^[ \t]*To:[ \t]*{_READER}(?![\w'’-])", re.M), 250),
    (re.compile(rf"(?:^|\()[ \t]*(?:[Ss]ent|[Ww]ritten|[Aa]ddressed) to {_READER}(?![\w'’-])", re.M), None),
)
# first-person words, and what each becomes; "{n}" is the narrator's (or a message's writer's) name
_FIRST_PERSON = (
    (rf"I{_APOSTROPHE}m|I am", "{n} is"),
    (rf"I{_APOSTROPHE}ve|I have", "{n} has"),
    (rf"I{_APOSTROPHE}d", "{n} had"),
    (rf"I{_APOSTROPHE}ll", "{n} will"),
    (r"I", "{n}"),
    (r"[Mm]y|MY|[Mm]ine|[Oo]ur", "{n}'s"),
    (r"[Mm]e|ME|[Mm]yself", "{n}"),
)
# second-person words in a message, and what each becomes; "{n}" is the name of the one it is written to
_SECOND_PERSON = (
    (rf"[Yy]ou{_APOSTROPHE}re|[Yy]ou are", "{n} is"),
    (rf"[Yy]ou{_APOSTROPHE}ve", "{n} has"),
    (r"[Yy]our|[Yy]ours", "{n}'s"),
    (r"[Yy]ou|[Yy]ourself", "{n}"),
    # as people text: "u r my brother", "ur mum called", "ur her favourite"
    (
        r"[Uu] r|ur(?= (?:a|an|the|her|his|my|our|their|so|too|not|in|on|at|always|never|still|just|literally|"
        r"such|gonna|going|welcome|right)\b)",
        "{n} is",
    ),
    (r"ur", "{n}'s"),
    (r"u", "{n}"),
)
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_RELATIVE = r"(?:(?:his|her|their) [\w'’-]+(?: [\w'’-]+){0,2} )?"  # "her husband ", "his big sister "
# a message quoted after who wrote it to whom: 'Text from Priyanka to her husband Arjun: "..."', 'Nadia,
# texting her brother Omar: "..."', 'Miguel to his wife Marta: "..."'
_MESSAGE = re.compile(
    rf"^\W*(?:(?:[Tt]ext|[Mm]essage|[Ee]mail|[Nn]ote|[Ll]etter)(?: message)? from )?{_NAME.replace('name', 'writer')}"
    rf",? (?:to|texting|texted|messaging|messaged|writing to|writes to|wrote to|telling|tells|told) {_RELATIVE}"
    rf"{_NAME.replace('name', 'reader')}\s*:\s*(?=[\"“])"
)

# a line of a chat or a transcript: "Chloe: did you hear ...", "[21:04] Kai: I'm bringing it"
_CHAT_LINE = re.compile(
    rf"^[ \t]*(?:\[[^\]\n]*\][ \t]*)?{_NAME.replace('name', 'speaker')}[ \t]*:[ \t]*(?P<said>[^\n]*)$", re.M
)
# headings that look like a speaker in a post ("Edit: ...", "Update: ...")
_NOT_SPEAKERS = _NOT_NAMES | set("Edit Update Note Question Answer Re Subject From To Date Sent Posted Ps".split())


def _quoted(text: str) -> Callable[[int], bool]:
    """Whether a position of ``text`` is inside quotes."""
    spans = [m.span() for m in _QUOTED.finditer(text)]
    return lambda at: any(a <= at < b for a, b in spans)


def _rewritten(text: str, forms: tuple[tuple[str, str], ...], name: str, inside: bool) -> str:
    """``text`` with each of ``forms``' words written as ``name`` would be, inside quotes or outside them."""
    words = re.compile("|".join(f"(?P<w{k}>\\b(?:{p})(?![\\w'’-]))" for k, (p, _) in enumerate(forms)))
    quoted = _quoted(text)

    def written(hit: re.Match[str]) -> str:
        if quoted(hit.start()) != inside:
            return hit.group(0)
        return forms[int(hit.lastgroup[1:])][1].format(n=name)

    return words.sub(written, text)


_FIRST_WORD = re.compile(r"(?:^|[.!?]\s+)\W*([\w'’-]+)")  # of the line or of one of its sentences
_LAST_WORD = re.compile(r",\s*([\w'’-]+)\W*$")
_BEFORE_YOU = re.compile(r"([\w'’-]+),? (?:you|u|ur|your)\b")  # "my big bro Jiwoo ur in charge"


def _addressed(said: str, speakers: dict[str, str], speaker: str) -> str | None:
    """Whom a chat line calls by name, at the start of one of its sentences ("Keoni you're ...", "traitor.
    Haruto u r ..."), right before "you" ("ok my bro Jiwoo ur in charge") or at its end ("..., Keoni!"), if
    anyone but ``speaker``, however it is cased ("amina ur my sister": ``speakers`` maps each speaker's name in
    lowercase to it); one look at each, however many people speak."""
    for hit in (*_FIRST_WORD.finditer(said), _LAST_WORD.search(said), *_BEFORE_YOU.finditer(said)):
        if hit and speakers.get(hit.group(1).lower(), speaker) != speaker:
            return speakers[hit.group(1).lower()]
    return None


def _in_chat(text: str) -> str:
    """``text`` with each chat line's first-person words written as its speaker's, and its second-person words
    as the one it calls by name or else the one who spoke last before; unchanged unless two people or more
    speak in lines of their own ("Malia: ...", "Keoni: ...")."""
    lines = [hit for hit in _CHAT_LINE.finditer(text) if hit.group("speaker") not in _NOT_SPEAKERS]
    speakers = {hit.group("speaker") for hit in lines}
    if len(speakers) < 2:
        return text
    # who speaks next after each line, other than its speaker: the chat's first lines have no one before
    said_by = [hit.group("speaker") for hit in lines]
    next_other: list[str | None] = [None] * len(lines)
    for k in range(len(lines) - 2, -1, -1):
        next_other[k] = said_by[k + 1] if said_by[k + 1] != said_by[k] else next_other[k + 1]
    by_lowercase = {name.lower(): name for name in speakers}
    out, at, spoken = [], 0, []
    for k, hit in enumerate(lines):
        speaker, said = hit.group("speaker"), hit.group("said")
        # the one who spoke last before, else the next other one to speak
        before = next((name for name in reversed(spoken) if name != speaker), None) or next_other[k]
        reader = _addressed(said, by_lowercase, speaker) or before
        if reader is not None:  # before "my" is a name: "ur my sister" is "you're", "ur mum" "your"
            # "Keoni you're my brother" would read "Keoni Keoni is": one name is enough
            said = re.sub(
                rf"\b{re.escape(reader)},? ({re.escape(reader)})\b",
                r"\1",
                _rewritten(said, _SECOND_PERSON, reader, False),
                flags=re.I,
            )
        said = _rewritten(said, _FIRST_PERSON, speaker, inside=False)
        out += [text[at : hit.start("said")], said]
        at = hit.end("said")
        spoken.append(speaker)
    return "".join(out) + text[at:]


# an interview written as "Q: ..." and "A: ..." lines; who answers is named in a heading ("Interview with Mrs.
# Chiyo Sato", "interviewee: Rodrigo Salas") or in the answer to a question about their name ("A: Grace Atieno.")
_QA_LINE = re.compile(r"^[ \t]*(?P<who>[QA])[ \t]*:[ \t]*(?P<said>[^\n]*)$", re.M)
_INTERVIEWEE = re.compile(
    rf"\b[Ii]nterview(?:ee)?(?: with)?:? (?:(?:Mr|Mrs|Ms|Miss|Dr|Don|Doña|Dona)\.? )?{_NAME}(?![\w'’-])"
)
_ANSWERED_NAME = re.compile(rf"^{_NAME}(?: [A-Z][\w'’-]+){{0,2}}\s*(?:[.!,]|$)")
# a voice message: one quotation, after a heading at most ("[Voicemail, Tues 7:40pm]"), then the question
_VOICE = re.compile(r"^\s*(?:\[[^\]\n]*\][ \t]*\n?\s*)?[\"“](?P<body>[^\"”]{40,})[\"”]")
# whom a voice message calls at its start: "Hey Chloe, it's Josh", "Walter, honey, ...", "this message is for Kwesi"
_CALLED = re.compile(rf"^\W*(?:(?:[Hh]i|[Hh]ey|[Hh]ello),? |.{{0,40}}\bmessage is for )?{_READER}(?:,|\.)")


def _in_interview(text: str) -> str:
    """``text`` with an interview's answers in the interviewee's name ("A: my son Hiroshi" -> "Chiyo: Chiyo's
    son Hiroshi") and the questions' "you" as the interviewee; unchanged unless two "Q:" and two "A:" lines and
    a named interviewee."""
    lines = list(_QA_LINE.finditer(text))
    if min(sum(hit.group("who") == who for hit in lines) for who in "QA") < 2:
        return text
    heading = _INTERVIEWEE.search(text, 0, 400)
    name = heading.group("name") if heading else None
    for asked, answer in zip(lines, lines[1:]):
        if name is None and asked.group("who") == "Q" and answer.group("who") == "A" and "name" in asked.group("said"):
            hit = _ANSWERED_NAME.match(answer.group("said"))
            name = hit.group("name") if hit else None
    if name is None or name in _NOT_NAMES:
        return text
    out, at = [], 0
    for hit in lines:
        if hit.group("who") == "A":
            said = _rewritten(hit.group("said"), _FIRST_PERSON, name, inside=False)
            out += [text[at : hit.start("who")], name, text[hit.end("who") : hit.start("said")], said]
        else:
            out += [text[at : hit.start("said")], _rewritten(hit.group("said"), _SECOND_PERSON, name, inside=False)]
        at = hit.end("said")
    return "".join(out) + text[at:]


_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")


def _question_alone(rest: str) -> bool:
    """Whether ``rest``, what follows a sign-off or a voice message, is at most the question and one note
    before it ("(Sent to Thandi.) What is ...?")."""
    return len(_SENTENCE_END.findall(rest)) <= 2 and (not rest or rest.endswith("?"))


def _in_voice_message(text: str) -> str:
    """``text`` with a voice message's "I" as the caller who names themself at its start ("Hey Chloe, it's Josh")
    and its "you" as the one it calls ("Chloe"); unchanged unless the text is one quotation and the question."""
    hit = _VOICE.match(text)
    if hit is None or not _question_alone(text[hit.end() :].strip()):
        return text
    body = hit.group("body")
    caller, called = narrator(body), _CALLED.search(body, 0, 200)
    to = called.group("reader") if called and called.group("reader") not in _NOT_NAMES else None
    if to is not None and to != caller:
        body = _rewritten(body, _SECOND_PERSON, to, inside=False)
    if caller is not None:
        body = _rewritten(body, _FIRST_PERSON, caller, inside=False)
    return text[: hit.start("body")] + body + text[hit.end("body") :]


def narrator(text: str) -> str | None:
    """The name a first-person story gives its narrator: introduced in its first 300 characters, else signed in
    its last 300; None when it does neither, or names a common word ("I'm Sorry")."""
    opening = text[:300]
    for pattern in _INTRODUCTIONS:
        hit = pattern.search(opening)
        if hit and hit.group("name") not in _NOT_NAMES:
            return hit.group("name")
    # a signature ends the text: look there only; a pseudonym's bracketed name first ("- Dad in Denver (Mike)")
    signatures = chain(
        _SIGNED_ALIAS.finditer(text, max(len(text) - 400, 0)), _SIGNATURE.finditer(text, max(len(text) - 300, 0))
    )
    for hit in signatures:
        if _SIGNATURE_END.fullmatch(text, hit.end()) and hit.group("name") not in _NOT_NAMES:
            return hit.group("name")
    letter, signed = _LETTER.search(text, 0, 250) is not None, None
    for hit in _SIGN_OFF.finditer(text, max(len(text) - 400, 0)):  # the last one signs: "Merry Christmas!\nJanet"
        if not _question_alone(text[hit.end() :].strip()) or hit.group("name") in _NOT_NAMES:
            continue
        # a name alone is a signature only on a line of its own in a letter
        if hit.group("closing") or (letter and not hit.group("inline")):
            signed = hit.group("name")
    return signed


def reader(text: str) -> tuple[str, re.Match[str]] | None:
    """Whom a letter, an email or a note is written to, and the hit that says so: a salutation or a "To:"
    header in its first 250 characters, or "(Sent to Thandi.)" anywhere; None for "Dear all" or no one."""
    for pattern, reach in _ADDRESSED:
        hit = pattern.search(text, 0, reach or len(text))
        if hit and hit.group("reader") not in _NOT_NAMES:
            return hit.group("reader"), hit
    return None


def _titled(text: str, titles: tuple[str, ...], name: str) -> str:
    """``text`` with each of ``titles`` that the narrator uses as a name ("Mom (Claire) says", "Grandpa told
    Noah": capitalised, nobody's before it) outside quotes written as the narrator's ("Noah's mom (Claire)")."""
    if not titles:
        return text
    words = "|".join(re.escape(t.capitalize()) for t in titles)
    owner = rf"(?:[Mm]y|[Hh]is|[Hh]er|[Tt]heir|[Yy]our|[Oo]ur|[Tt]he|[Aa]|[^\W\d_]+{_APOSTROPHE}s?)"
    pattern = re.compile(rf"(?<![\w'’-])(?P<owner>{owner} )?(?P<title>{words})(?![\w-])")
    quoted = _quoted(text)

    def written(hit: re.Match[str]) -> str:
        if hit.group("owner") or quoted(hit.start()):
            return hit.group(0)
        return f"{name}'s {hit.group('title').lower()}"

    return pattern.sub(written, text)


def in_third_person(text: str, titles: tuple[str, ...] = ()) -> str:
    """``text`` with its narrator's "I", "me", "my" (outside quotes) written as the narrator's name, and the
    ``titles`` the narrator calls relatives by ("Mom", "Grandpa") as the narrator's; in a message quoted after
    who wrote it to whom, the writer's "I" and the reader's "you" (inside quotes) as their names; the text
    unchanged when it does neither."""
    text = _in_voice_message(_in_interview(_in_chat(text)))
    message = _MESSAGE.match(text)
    if message and message.group("writer") not in _NOT_NAMES and message.group("reader") not in _NOT_NAMES:
        head, body = text[: message.end()], text[message.end() :]
        body = _rewritten(body, _FIRST_PERSON, message.group("writer"), inside=True)
        text = head + _rewritten(body, _SECOND_PERSON, message.group("reader"), inside=True)
    name = narrator(text)
    if (written_to := reader(text)) is not None and written_to[0] != name:
        to, hit = written_to
        if hit.groupdict().get("kin") and name is not None:  # "Dear brother Samuel": the writer's brother
            text = text[: hit.start("kin")] + "my " + text[hit.start("kin") :]
        text = _rewritten(text, _SECOND_PERSON, to, inside=False)
    if name is None:
        return text
    out = _titled(_rewritten(text, _FIRST_PERSON, name, inside=False), titles, name)
    # the introduction itself now says "Grace is Grace", "Mateus's name is Mateus", "Emily (29F, Emily)", "Hamid
    # (Hamid Tehrani)" or "Alejandro: Alejandro Ramírez": keep the name once
    said = re.escape(name)

    def once(hit: re.Match[str]) -> str:
        return f"{name}{hit[2]} ({hit[1]})" if hit[1] else f"{name}{hit[2]}"

    out = re.sub(rf"\b{said} \((?:([^()\n]*?),? )?{said}((?: [A-Z][\w'’-]+)*)\)", once, out)
    out = re.sub(rf"\b{said}: (?={said}\b)", "", out)
    return re.sub(rf"\b{said} is {said}\b|\b{said}'s name is {said}\b", name, out)

"""The words a household texts to raise an alarm, and the kind each raises.

People type on any phone, often without Vietnamese diacritics and in any case: the
text is folded first (lower case, diacritics off, "đ" as "d"), so "CHÁY", "Cháy" and
"chay" are one word. The earliest keyword in the message decides (at one position
the longest phrase wins, so "cấp cứu" is medical while "cứu" alone is sos); a message
that is only "1" confirms a missed call (hub/integrations/phone.py). The table is in
docs/phone-alarms.md; change both together.
"""

from __future__ import annotations

import re
import unicodedata

from protocol import Kind

# folded phrase -> kind. Whole words only ("lu" does not match "lua").
KEYWORDS: dict[str, Kind] = {
    "chay": Kind.FIRE, "hoa hoan": Kind.FIRE, "fire": Kind.FIRE,
    "trom": Kind.THEFT, "trom cap": Kind.THEFT, "theft": Kind.THEFT, "thief": Kind.THEFT,
    "cuop": Kind.ROBBERY, "cuop giat": Kind.ROBBERY, "robbery": Kind.ROBBERY,
    "danh nhau": Kind.FIGHT, "au da": Kind.FIGHT, "fight": Kind.FIGHT,
    "lu": Kind.FLOOD, "lut": Kind.FLOOD, "lu lut": Kind.FLOOD, "ngap": Kind.FLOOD,
    "flood": Kind.FLOOD,
    "cap cuu": Kind.MEDICAL, "tai nan": Kind.MEDICAL, "medical": Kind.MEDICAL,
    "cuu": Kind.SOS, "cuu voi": Kind.SOS, "giup": Kind.SOS, "bao dong": Kind.SOS,
    "sos": Kind.SOS, "help": Kind.SOS,
}
CONFIRM = "1"
_LONGEST = max(len(k.split()) for k in KEYWORDS)


def fold(text: str) -> str:
    """Lower case, without diacritics ("Đ" → "d"), words joined by single spaces."""
    text = text.replace("đ", "d").replace("Đ", "D")
    bare = "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")
    return " ".join(re.findall(r"[a-z0-9]+", bare.lower()))


def kind_for(text: str) -> Kind | None:
    """The kind the message raises (its earliest keyword), or None."""
    words = fold(text).split()
    for i in range(len(words)):
        for n in range(min(_LONGEST, len(words) - i), 0, -1):
            kind = KEYWORDS.get(" ".join(words[i:i + n]))
            if kind is not None:
                return kind
    return None


def is_confirmation(text: str) -> bool:
    """The whole message is "1" (the reply a missed call asks for)."""
    return fold(text) == CONFIRM

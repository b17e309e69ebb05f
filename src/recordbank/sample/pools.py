"""Value pools for the sample generator: names, places, phone plans and messy spellings.

Kept apart from the generator so the tables can grow without hiding the logic. Every string
here is encodable in cp1252, so any generated row can be written as a Windows-1252 CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class PhonePlan:
    """A block of national numbers: fixed leading digits plus `sub_len` free digits.

    The first free digit is at least `sub_min` (so the block never starts with 0), and `groups`
    splits the national significant number (lead + free digits) for display.
    """

    lead: str
    sub_len: int
    sub_min: int
    groups: tuple[int, ...]

    @property
    def size(self) -> int:
        return (10 - self.sub_min) * 10 ** (self.sub_len - 1)


@dataclass(frozen=True)
class Country:
    iso: str
    weight: float
    calling_code: str
    trunk: str  # national trunk prefix ("0" in most of Europe, "" in NANP and Spain)
    aliases: tuple[str, ...]  # spellings seen in the wild, all meaning `iso`
    plans: tuple[PhonePlan, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[str, ...]
    streets: tuple[str, ...]
    street_first: bool  # "Hauptstraße 12" (True) or "12 Main St" (False)
    domains: tuple[str, ...]


_EN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Mary Ann", "Zoë", "Chloé", "Renée", "Seán", "Olivia", "Noah",
)
_EN_LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore",
    "Jackson", "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
    "O'Brien", "O'Connor", "McDonald", "Van der Berg", "Smith-Jones", "Young", "King", "Wright",
)
_NANP_AREAS_US = (
    "201", "202", "203", "205", "206", "207", "208", "210", "212", "213", "214", "215", "216",
    "217", "218", "219", "224", "225", "228", "229", "231", "234", "239", "240", "248", "251",
    "252", "253", "254", "256", "260", "262", "267", "269", "270", "276", "281", "301", "302",
    "303", "304", "305", "307", "308", "309", "310", "312", "313", "314", "315", "316", "317",
    "318", "319", "320", "321", "323", "330", "334", "336", "337", "339", "347", "351", "352",
    "360", "361", "386", "401", "402", "404", "405", "406", "407", "408", "409", "410", "412",
    "413", "414", "415", "417", "419", "423", "425", "430", "432", "434", "435", "440", "443",
)
_NANP_AREAS_CA = (
    "204", "226", "236", "249", "250", "289", "306", "343", "365", "403", "416", "418", "431",
    "437", "438", "450", "506", "514", "519", "548", "579", "581", "587", "604", "613", "639",
    "647", "705", "709", "778", "780", "782", "807", "819", "825", "867", "873", "902", "905",
)


def _nanp(areas: tuple[str, ...]) -> tuple[PhonePlan, ...]:
    return tuple(PhonePlan(a, 7, 2, (3, 3, 4)) for a in areas)


COUNTRIES: Final[tuple[Country, ...]] = (
    Country(
        "US", 0.40, "1", "",
        ("US", "USA", "United States", "united states", "U.S.A.", "United States of America",
         "U.S.", "usa"),
        _nanp(_NANP_AREAS_US), _EN_FIRST, _EN_LAST,
        ("New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "San Francisco", "Seattle",
         "Boston", "Austin", "Denver", "Miami", "Portland", "St. Louis", "Winston-Salem"),
        ("Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park"),
        False,
        ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "aol.com", "icloud.com",
         "example.com", "comcast.net"),
    ),
    Country(
        "GB", 0.15, "44", "0",
        ("UK", "U.K.", "United Kingdom", "GB", "GBR", "Great Britain", "uk", "united kingdom"),
        (*(PhonePlan(lead, 7, 1, (2, 4, 4)) for lead in ("203", "207", "208")),
         *(PhonePlan(lead, 8, 1, (4, 6)) for lead in ("74", "75", "77", "78", "79")),
         PhonePlan("161", 7, 2, (3, 3, 4))),
        _EN_FIRST, _EN_LAST,
        ("London", "Manchester", "Birmingham", "Leeds", "Glasgow", "Bristol",
         "Newcastle upon Tyne"),
        ("High", "Station", "Church", "Victoria", "Queen's", "Mill", "King"),
        False,
        ("gmail.com", "btinternet.com", "hotmail.co.uk", "yahoo.co.uk", "sky.com", "example.co.uk"),
    ),
    Country(
        "DE", 0.15, "49", "0",
        ("DE", "Deutschland", "Germany", "DEU", "germany", "GERMANY", "deutschland"),
        (PhonePlan("30", 8, 1, (2, 8)), PhonePlan("89", 8, 1, (2, 8)),
         PhonePlan("40", 7, 1, (2, 7)), PhonePlan("151", 8, 1, (3, 8)),
         PhonePlan("170", 8, 1, (3, 8))),
        ("Lukas", "Anna", "Jürgen", "Sören", "Maximilian", "Sophie", "Felix", "Marie", "Jörg",
         "Katharina", "Hans-Peter", "Ursula", "Björn", "Käthe", "Stefan", "Lena"),
        ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
         "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Groß"),
        ("Berlin", "München", "Hamburg", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf"),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schulstraße", "Lindenallee",
         "Berliner Str."),
        True,
        ("web.de", "gmx.de", "t-online.de", "gmail.com", "posteo.de", "example.de"),
    ),
    Country(
        "FR", 0.12, "33", "0",
        ("France", "FR", "fra", "FRA", "france", "FRANCE", "République française"),
        (PhonePlan("1", 8, 1, (1, 2, 2, 2, 2)), PhonePlan("6", 8, 1, (1, 2, 2, 2, 2)),
         PhonePlan("7", 8, 5, (1, 2, 2, 2, 2)), PhonePlan("4", 8, 1, (1, 2, 2, 2, 2))),
        ("Jean", "Marie", "François", "Hélène", "Léa", "Émile", "Jean-Pierre", "Camille",
         "Céline", "Louis", "Manon", "Théo", "Inès", "Noël"),
        ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Petit", "Durand", "Leroy", "Moreau",
         "Lefèvre", "Girard", "Bonnet", "Fournier", "Mercier", "de la Tour"),
        ("Paris", "Marseille", "Lyon", "Toulouse", "Nice", "Nantes", "Aix-en-Provence"),
        ("rue de la Paix", "avenue des Champs-Élysées", "rue Victor Hugo", "boulevard Voltaire",
         "rue du Moulin", "place de l'Église"),
        False,
        ("orange.fr", "free.fr", "laposte.net", "gmail.com", "sfr.fr", "example.fr"),
    ),
    Country(
        "CA", 0.08, "1", "",
        ("Canada", "CA", "CAN", "canada", "CANADA"),
        _nanp(_NANP_AREAS_CA), _EN_FIRST, _EN_LAST,
        ("Toronto", "Montréal", "Vancouver", "Calgary", "Ottawa", "Québec", "Halifax"),
        ("Yonge", "King", "Queen", "Bloor", "Dundas", "Sainte-Catherine", "Granville"),
        False,
        ("gmail.com", "rogers.com", "shaw.ca", "videotron.ca", "outlook.com", "example.ca"),
    ),
    Country(
        "ES", 0.10, "34", "",
        ("Spain", "España", "ES", "ESP", "spain", "ESPAÑA"),
        (PhonePlan("6", 8, 1, (3, 3, 3)), PhonePlan("9", 8, 1, (3, 3, 3)),
         PhonePlan("7", 8, 1, (3, 3, 3))),
        ("José", "María", "Antonio", "Carmen", "Manuel", "Ana", "Francisco", "Lucía", "Javier",
         "Pilar", "Jesús", "Ángel", "María José", "Begoña"),
        ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
         "Gómez", "Martín", "Jiménez", "Ruiz", "Núñez", "Muñoz", "de la Cruz"),
        ("Madrid", "Barcelona", "Valencia", "Sevilla", "Zaragoza", "Málaga", "A Coruña"),
        ("Calle Mayor", "Avenida de la Constitución", "Calle del Sol", "Paseo de Gracia",
         "Plaza de España"),
        True,
        ("gmail.com", "hotmail.es", "yahoo.es", "telefonica.net", "outlook.es", "example.es"),
    ),
)

# Planted rates, as shares of all rows (or of the rows a rule applies to).
RATES: Final[dict[str, float]] = {
    "quarantine": 0.01,  # no email, phone or name
    "duplicate": 0.05,  # planted repeat of an earlier unique row
    "email_invalid": 0.025,  # "bob.smith12@", "bob.smith12", "x@@y.com", "x(at)y.com", "x@.y.com"
    "email_placeholder": 0.01,  # "n/a", "none", "-", None ...
    "email_recased": 0.15,  # UPPER / Title case
    "padding": 0.03,  # per text field: leading/trailing spaces, tabs, NBSP
    "name_missing_part": 0.02,  # first or last name blank (never both)
    "name_upper": 0.03,
    "phone_international": 0.45,  # +CC / 00CC; always for rows with a bad or missing email
    "phone_extension": 0.02,
    "phone_garbage": 0.02,  # only where the email is valid
    "phone_blank": 0.03,  # only where the email is valid
    "country_garbage": 0.02,
    "country_blank": 0.03,
    "date_unparseable": 0.02,
    "date_blank": 0.02,
    "company_blank": 0.45,
}

# Country values that mean nothing (or no single country): the normalizer must flag them.
COUNTRY_GARBAGE: Final = ("??", "Earth", "N/A", "123", "Europe", "xx", "-", "Unknown")
EMAIL_PLACEHOLDERS: Final = ("n/a", "N/A", "none", "-", "unknown", "no email")
PHONE_GARBAGE: Final = ("n/a", "123", "call me", "000", "+", "none", "see notes", "0")
DATE_GARBAGE: Final = (
    "unknown", "0000-00-00", "N/A", "2024-13-45", "31/31/2031", "yesterday", "00/00/0000",
    "TBD", "99.99.9999",
)
# Blank-looking values: after trimming spaces, tabs and NBSP they are all empty.
BLANKS: Final = ("", " ", "\t", "\xa0", "  ", " \t ")
# Status spellings per canonical value (schema.STATUSES).
STATUS_SYNONYMS: Final[dict[str, tuple[str, ...]]] = {
    "active": ("1", "true", "TRUE", "Active", "ACTIVE", "active", "ENABLED", "yes", "Y"),
    "inactive": ("0", "false", "FALSE", "inactive", "Inactive", "DISABLED", "no", "N"),
    "pending": ("pending", "Pending", "PENDING"),
    "unknown": ("", "?", "n/a"),
}
STATUS_WEIGHTS: Final = {"active": 0.6, "inactive": 0.2, "pending": 0.12, "unknown": 0.08}
COMPANIES: Final = (
    "Acme Corp", "Globex Inc.", "Initech", "Umbrella GmbH", "Smith, Jones & Co", "Soylent S.A.",
    "Stark Industries", "Wayne Enterprises", "Müller & Söhne KG", "Café de Flore SARL",
    "Hooli", "Vandelay Industries", "Self-employed", "N/A",
)
NOTES: Final = (
    "VIP", "called twice, no answer", 'prefers "email" only', "moved; see new address",
    "do not contact", "referred by a friend", "paid in cash", "wants catalogue\nsent by post",
    "duplicate?", "Newsletter: yes", "Rückruf erwünscht", "a;b;c", "tab\tinside",
)
UNIT_FORMATS: Final = (", Apt {n}", ", Suite {n}", " #{n}", ", Flat {n}", ", 2nd floor")

"""Words, emoji and units that carry (or must not be read as) a rating in an emailed reply.

Sentiment words are valued on a 1-5 scale (csat5) and mapped to csat3 and thumbs; effort words are
valued on the 1-7 ces7 scale; nps is answered with numbers only. A value of None marks a stop phrase:
words that look like a rating but are not one ("good morning", "bien à vous"). Phrases are matched as
whole words, case- and accent-insensitively, in the survey's language and in English.
"""

from __future__ import annotations

Table = dict[str, dict[str, int | None]]


def _levels(*groups: tuple[int | None, str]) -> dict[str, int | None]:
    table: dict[str, int | None] = {}
    for value, phrases in groups:
        for phrase in phrases.split(","):
            if phrase.strip():
                table[phrase.strip()] = value
    return table


SENTIMENT: Table = {
    "en": _levels(
        (5, "excellent,great,awesome,amazing,fantastic,perfect,superb,outstanding,brilliant,wonderful,"
            "very good,very satisfied,extremely satisfied,very happy,very helpful,super,love it,loved it,top notch"),
        (4, "good,satisfied,happy,nice,fine,pleased,helpful,not bad,pretty good,quite good"),
        (3, "okay,ok,neutral,average,alright,all right,so-so,mediocre,fair,meh,could be better"),
        (2, "bad,poor,dissatisfied,unhappy,disappointed,disappointing,unsatisfied,unhelpful"),
        (1, "terrible,awful,horrible,very bad,very poor,very dissatisfied,useless,worst,appalling,dreadful,"
            "abysmal,very unhappy"),
        (None, "good morning,good afternoon,good evening,good night,good day,good luck,good weekend,"
               "have a good,have a great,fine print,no problem,no worries"),
    ),
    "nb": _levels(
        (5, "utmerket,kjempebra,supert,super,fantastisk,strålende,veldig bra,svært bra,meget bra,perfekt,"
            "knallbra,topp,helt topp,veldig fornøyd,svært fornøyd,glimrende,enestående,kjempefornøyd"),
        (4, "bra,fint,fin,fornøyd,ikke dårlig,ganske bra"),
        (3, "greit,grei,ok,okei,helt greit,middels,nøytral,sånn passe,passe"),
        (2, "dårlig,dårleg,misfornøyd,skuffet,skuffende,skuffa"),
        (1, "elendig,forferdelig,svært dårlig,veldig dårlig,katastrofalt,grusomt,helt elendig,"
            "svært misfornøyd,veldig misfornøyd,håpløst,ubrukelig"),
        (None, "fin dag,fin helg,ha det fint"),
    ),
    "sv": _levels(
        (5, "utmärkt,jättebra,superbra,fantastiskt,fantastisk,toppen,perfekt,mycket bra,väldigt bra,"
            "mycket nöjd,väldigt nöjd,kanonbra,strålande,super"),
        (4, "bra,nöjd,fint,fin,inte dåligt,ganska bra"),
        (3, "okej,ok,helt okej,godkänt,neutral,sådär,medel,helt ok"),
        (2, "dåligt,dålig,missnöjd,besviken,besviket"),
        (1, "uselt,usel,katastrof,katastrofalt,hemskt,mycket dåligt,väldigt dåligt,mycket missnöjd,"
            "värdelöst,fruktansvärt"),
        (None, "ha det bra,ha en bra,ha det fint"),
    ),
    "da": _levels(
        (5, "fremragende,fantastisk,super,perfekt,meget god,rigtig god,meget godt,rigtig godt,meget tilfreds,"
            "virkelig god,glimrende,suveræn,supergod"),
        (4, "god,godt,fint,fin,tilfreds,tilfredsstillende,ikke dårligt,ikke dårlig"),
        (3, "okay,ok,neutral,middel,helt okay,jævnt"),
        (2, "dårlig,dårligt,utilfreds,skuffet,skuffende"),
        (1, "elendig,forfærdelig,meget dårlig,rigtig dårlig,meget dårligt,meget utilfreds,katastrofal,"
            "ubrugelig"),
        (None, "god dag,god morgen,god aften,god weekend,god jul,god sommer,god bedring,god ferie,godt nytår,"
               "god fornøjelse,god påske,god tur,god eftermiddag,god nat,fin dag,fin weekend"),
    ),
    "de": _levels(
        (5, "ausgezeichnet,hervorragend,super,perfekt,sehr gut,toll,fantastisch,klasse,spitze,sehr zufrieden,"
            "großartig,exzellent,top,prima"),
        (4, "gut,zufrieden,nicht schlecht,ganz gut,recht gut"),
        (3, "ok,okay,in ordnung,neutral,mittel,mittelmäßig,geht so,passt"),
        (2, "schlecht,unzufrieden,enttäuscht,enttäuschend"),
        (1, "sehr schlecht,furchtbar,schrecklich,katastrophal,miserabel,sehr unzufrieden,grauenhaft,"
            "unbrauchbar,unmöglich"),
        (None, "guten tag,gute nacht,alles gute"),
    ),
    "fr": _levels(
        (5, "excellent,parfait,génial,super,très bien,très satisfait,très satisfaite,formidable,fantastique,"
            "top,impeccable,très bon"),
        (4, "bien,bon,satisfait,satisfaite,content,contente,pas mal,plutôt bien"),
        (3, "correct,moyen,neutre,ok,okay,bof,passable"),
        (2, "mauvais,mauvaise,insatisfait,insatisfaite,déçu,déçue,décevant,pas terrible"),
        (1, "très mauvais,horrible,nul,nulle,catastrophique,affreux,lamentable,très insatisfait,"
            "très insatisfaite,très déçu"),
        (None, "bien à vous,bien cordialement,bien sûr,bien reçu,eh bien,ou bien,bon courage,bon week-end,"
               "bon weekend,bonne journée,bonne soirée,bon après-midi,bonne continuation,terrible"),
    ),
    "es": _levels(
        (5, "excelente,perfecto,genial,fantástico,muy bien,muy bueno,muy buena,muy satisfecho,muy satisfecha,"
            "estupendo,maravilloso,increíble"),
        (4, "bien,bueno,buena,satisfecho,satisfecha,contento,contenta,no está mal,nada mal"),
        (3, "regular,normal,ok,vale,neutral,más o menos,aceptable"),
        (2, "mal,mala,malo,insatisfecho,insatisfecha,decepcionado,decepcionada,decepcionante"),
        (1, "muy mal,muy malo,muy mala,terrible,horrible,pésimo,pésima,fatal,desastroso,muy insatisfecho,"
            "muy insatisfecha"),
        (None, "muy buenas,buenas tardes,buenos días,bien recibido"),
    ),
    "nl": _levels(
        (5, "uitstekend,geweldig,perfect,super,heel goed,zeer goed,erg goed,fantastisch,top,zeer tevreden,"
            "heel tevreden,erg tevreden,voortreffelijk"),
        (4, "goed,tevreden,prima,fijn,prettig,niet slecht"),
        (3, "oké,ok,okay,neutraal,redelijk,gaat wel,gemiddeld"),
        (2, "slecht,ontevreden,teleurgesteld,teleurstellend,matig"),
        (1, "zeer slecht,heel slecht,erg slecht,vreselijk,verschrikkelijk,waardeloos,zeer ontevreden,rampzalig"),
        (None, "goede dag,goedendag,fijne dag,fijn weekend"),
    ),
}

EFFORT: Table = {
    "en": _levels((7, "very easy,effortless,extremely easy"), (6, "easy"),
                  (5, "fairly easy,somewhat easy,quite easy,pretty easy"),
                  (4, "neither easy nor difficult,neither easy nor hard"),
                  (3, "somewhat difficult,fairly difficult,quite difficult,somewhat hard,a bit difficult"),
                  (2, "difficult,hard"), (1, "very difficult,very hard,extremely difficult")),
    "nb": _levels((7, "svært enkelt,veldig enkelt,veldig lett,svært lett"), (6, "enkelt,lett"),
                  (5, "ganske enkelt,ganske lett"), (4, "verken enkelt eller vanskelig,verken lett eller vanskelig"),
                  (3, "ganske vanskelig"), (2, "vanskelig,tungvint"), (1, "svært vanskelig,veldig vanskelig")),
    "sv": _levels((7, "mycket lätt,väldigt lätt,mycket enkelt"), (6, "lätt,enkelt"), (5, "ganska lätt,ganska enkelt"),
                  (4, "varken lätt eller svårt"), (3, "ganska svårt"), (2, "svårt"),
                  (1, "mycket svårt,väldigt svårt")),
    "da": _levels((7, "meget nemt,meget let,rigtig nemt"), (6, "nemt,let"), (5, "forholdsvis nemt,ret nemt"),
                  (4, "hverken nemt eller svært"), (3, "forholdsvis svært,ret svært"), (2, "svært,besværligt"),
                  (1, "meget svært,rigtig svært")),
    "de": _levels((7, "sehr einfach,sehr leicht"), (6, "einfach,leicht"), (5, "eher einfach,ziemlich einfach"),
                  (4, "weder einfach noch schwierig"), (3, "eher schwierig,ziemlich schwierig"),
                  (2, "schwierig,schwer,umständlich"), (1, "sehr schwierig,sehr schwer")),
    "fr": _levels((7, "très facile"), (6, "facile,simple"), (5, "plutôt facile,assez facile"),
                  (4, "ni facile ni difficile"), (3, "plutôt difficile,assez difficile"), (2, "difficile,compliqué"),
                  (1, "très difficile,très compliqué")),
    "es": _levels((7, "muy fácil,muy sencillo"), (6, "fácil,sencillo"), (5, "algo fácil,bastante fácil"),
                  (4, "ni fácil ni difícil"), (3, "algo difícil,bastante difícil"), (2, "difícil,complicado"),
                  (1, "muy difícil,muy complicado")),
    "nl": _levels((7, "zeer gemakkelijk,heel makkelijk,zeer makkelijk,heel gemakkelijk"),
                  (6, "gemakkelijk,makkelijk,eenvoudig"), (5, "enigszins gemakkelijk,vrij makkelijk,vrij gemakkelijk"),
                  (4, "niet gemakkelijk en niet moeilijk"), (3, "enigszins moeilijk,vrij moeilijk"),
                  (2, "moeilijk,lastig"), (1, "zeer moeilijk,heel moeilijk")),
}

# Thumbs surveys ask a yes/no question; these count only as the very first word of the reply.
YES_NO: Table = {
    "en": _levels((1, "yes,yep,yeah,yup"), (0, "no,nope")),
    "nb": _levels((1, "ja,jepp,jo"), (0, "nei")),
    "sv": _levels((1, "ja,japp,jo"), (0, "nej")),
    "da": _levels((1, "ja,jep,jo"), (0, "nej")),
    "de": _levels((1, "ja,jawohl"), (0, "nein")),
    "fr": _levels((1, "oui,ouais"), (0, "non")),
    "es": _levels((1, "sí,si"), (0, "no")),
    "nl": _levels((1, "ja,jawel"), (0, "nee")),
}

# Words that turn the rating word after them around ("not good", "ikke bra", "nicht gut").
NEGATIONS: dict[str, tuple[str, ...]] = {
    "en": ("not", "never", "isn't", "wasn't", "aren't", "weren't", "hardly", "no"),
    "nb": ("ikke", "ikkje", "aldri", "ingen"),
    "sv": ("inte", "ej", "aldrig", "icke"),
    "da": ("ikke", "aldrig"),
    "de": ("nicht", "kein", "keine", "nie", "niemals"),
    "fr": ("pas", "jamais", "point"),
    "es": ("no", "nunca", "nada"),
    "nl": ("niet", "geen", "nooit"),
}

# Sentiment (1-5) on the scales that take words and emoji; a level missing from a map rates nothing.
FROM_SENTIMENT: dict[str, dict[int, int]] = {
    "csat5": {1: 1, 2: 2, 3: 3, 4: 4, 5: 5},
    "csat3": {1: 1, 2: 1, 3: 2, 4: 3, 5: 3},
    "thumbs": {1: 0, 2: 0, 4: 1, 5: 1},
}

EMOJI: dict[str, int] = {
    **dict.fromkeys("😀😃😄😁😆🤩😍🥰😻❤💯🙌🥳💖💕💚💙🏆", 5),
    **dict.fromkeys("🙂😊👍👌☺😌✅", 4),
    **dict.fromkeys("😐😑😶🤷🫤", 3),
    **dict.fromkeys("🙁😕☹😟😒👎😔", 2),
    **dict.fromkeys("😞😠😡🤬😤😢😭😩😫💩😖😣", 1),
}
EMOTICONS: dict[str, int] = {":)": 4, ":-)": 4, ";)": 4, ";-)": 4, ":d": 5, ":-d": 5, ":|": 3, ":-|": 3,
                             ":(": 2, ":-(": 2, ":'(": 1}
FILLED_STARS = "⭐🌟★"
EMPTY_STARS = "☆"

# A number followed by one of these is a quantity, a date or an amount, not a rating ("3 days", "5. nov").
UNITS = (
    "years?|yrs|ar|aar|jahre?n?|ans?|anos?|jaar|jaren|months?|maneder|manader|monate?n?|mois|meses|maanden|"
    "weeks?|uker|uke|veckor|vecka|uger|uge|wochen?|semaines?|semanas?|weken|week|"
    "days?|dager|dag|dagar|dage|tage?n?|jours?|dias?|dagen|hours?|hrs?|timer?|timmar|timme|stunden?|std|"
    "heures?|h|horas?|uur|minutes?|mins?|minutter|minuter|minuten|minutos?|sec|seconds?|sekunder|"
    "times|ganger|gang|ganger|gange|mal|fois|veces|vez|keer|kr|nok|sek|dkk|eur|euro|usd|dollars?|"
    "kroner|kronor|euros?|pcs|stk|st|items?|tickets?|emails?|e-?mails?|orders?|ordre|"
    "am|pm|o'?clock|uhr|"
    "jan|january|januar|janvier|enero|januari|feb|february|februar|fevrier|febrero|februari|"
    "mar|march|mars|marz|maerz|marzo|maart|apr|april|avril|abril|may|mai|mayo|mei|"
    "jun|june|juni|juin|junio|jul|july|juli|juillet|julio|aug|august|aout|agosto|augustus|"
    "sep|sept|september|septembre|septiembre|oct|okt|october|oktober|octobre|octubre|"
    "nov|november|novembre|noviembre|dec|des|dez|december|desember|dezember|decembre|diciembre"
)
STAR_WORDS = ("stars?|stjerner?|stjarnor|stjarna|sterne?n?|etoiles?|estrellas?|sterren|ster|points?|poeng|"
              "poang|punkte?|puntos?|punten|pts")
# "4 av 5", "4 of 5", "4 out of 5", "4 von 5", "4 sur 5", "4 de 5", "4 van 5", "4 ud af 5", "4/5".
OUT_OF = r"/|out\s+of|of|av|af|ud\s+af|von|sur|de|van|pa"

"""Localized strings for survey mails and pages, and mapping of customer locales to our languages."""

from __future__ import annotations

import re
from datetime import date

from tracker.scores.scales import SCALES

SUPPORTED = ("en", "nb", "sv", "da", "de", "fr", "es", "nl")
DEFAULT = "en"
# Helpdesks send codes ("nb-NO", "nb_NO.UTF-8"), ISO 639-2 codes or language names
# (Zendesk's {{ticket.requester.language}} renders a name such as "Norsk"); Norwegian has
# three codes, and we write bokmål for all of them (nynorsk readers read bokmål).
ALIASES = {
    "no": "nb", "nn": "nb", "nob": "nb", "nno": "nb", "nor": "nb", "norsk": "nb", "norwegian": "nb",
    "bokmål": "nb", "bokmal": "nb", "nynorsk": "nb", "norsk bokmål": "nb", "norwegian bokmål": "nb",
    "norwegian bokmal": "nb", "norsk nynorsk": "nb", "norwegian nynorsk": "nb",
    "eng": "en", "english": "en", "swe": "sv", "svenska": "sv", "swedish": "sv",
    "dan": "da", "dansk": "da", "danish": "da", "deu": "de", "ger": "de", "deutsch": "de", "german": "de",
    "fra": "fr", "fre": "fr", "français": "fr", "francais": "fr", "french": "fr",
    "spa": "es", "español": "es", "espanol": "es", "castellano": "es", "spanish": "es",
    "nld": "nl", "dut": "nl", "nederlands": "nl", "dutch": "nl", "vlaams": "nl", "flemish": "nl",
}

EN = {
    "mail.reminder_prefix": "Reminder:",
    "reason.slow": "It took too long",
    "reason.not_solved": "My issue was not solved",
    "reason.unfriendly": "The service was unfriendly",
    "reason.unclear": "The answer was hard to understand",
    "reason.other": "Something else",
    "followup.title": "Sorry to hear that",
    "followup.text": "We have recorded your answer. What went wrong? Your reply helps us improve.",
    "followup.legend": "What was the main reason?",
    "followup.error": "Please choose one of the reasons listed.",
    "mail.subject_order": 'How was your order {ref}?',
    "mail.intro_order": 'Thank you for your order {ref}. How did we do? It only takes one click to answer.',
    "mail.footer_order": 'You received this because you placed order {ref} with us.',
    "question_order.csat5": 'How satisfied are you with your order?',
    "question_order.csat3": 'How would you rate your order?',
    "question_order.thumbs": 'How was your order?',
    "question_order.ces7": 'How easy was it to order from us?',
    "page.error_title": 'Something went wrong',
    "page.error_text": 'Sorry, something went wrong on our side. Please try again in a moment.',
    "page.unavailable_text": 'The service is briefly unavailable. Please try again in a minute.',
    "page.change_link": 'Change your answer',
    "mail.subject": "How did we do with “{subject}”?",
    "mail.subject_ref": "How did we do with your request {ref}?",
    "mail.greeting": "Hi there,",
    "mail.greeting_name": "Hi {name},",
    "mail.intro": "We recently helped you with your request {ref}. How did we do? "
                  "It only takes one click to answer.",
    "mail.reply_hint": "You can also simply reply to this email with your rating and any comments.",
    "mail.expires": "The link works until {date}.",
    "mail.footer": "You received this because you contacted our support about ticket {ref}.",
    "mail.unsubscribe": "Unsubscribe from these surveys",
    "question.csat5": "How satisfied are you with the support you received?",
    "question.csat3": "How would you rate the support you received?",
    "question.thumbs": "How was the support you received?",
    "question.nps": "How likely are you to recommend us to a friend or colleague?",
    "question.ces7": "How easy was it to get your issue resolved?",
    "label.csat5.1": "Very dissatisfied", "label.csat5.2": "Dissatisfied", "label.csat5.3": "Neutral",
    "label.csat5.4": "Satisfied", "label.csat5.5": "Very satisfied",
    "label.csat3.1": "Bad", "label.csat3.2": "Okay", "label.csat3.3": "Good",
    "label.thumbs.0": "Not good", "label.thumbs.1": "Good",
    "label.nps.0": "Not at all likely", "label.nps.10": "Extremely likely",
    "label.ces7.1": "Very difficult", "label.ces7.2": "Difficult", "label.ces7.3": "Somewhat difficult",
    "label.ces7.4": "Neither easy nor difficult", "label.ces7.5": "Somewhat easy", "label.ces7.6": "Easy",
    "label.ces7.7": "Very easy",
    "page.title": "How did we do?",
    "page.rating_legend": "Your rating",
    "page.comment_label": "Anything you would like to add? (optional)",
    "page.submit": "Send",
    "page.thanks_title": "Thank you!",
    "page.thanks_text": "We have received your answer. It helps us get better.",
    "page.change_until": "You can change your answer until {date}.",
    "page.expired_title": "This survey has closed",
    "page.expired_text": "The link is no longer active, so we cannot record an answer. "
                         "Thank you for wanting to help all the same.",
    "page.not_found_title": "Survey not found",
    "page.not_found_text": "This link is not valid. "
                           "Please check that you opened the whole link from the email.",
    "page.unsubscribed_title": "You are unsubscribed",
    "page.unsubscribed_text": "You will not receive any more satisfaction surveys from us.",
    "page.unsubscribe_question": "Do you want to stop receiving satisfaction surveys from us?",
    "page.unsubscribe_button": "Unsubscribe",
    "page.error_rating": "Please choose a rating.",
    "date.format": "{day} {month} {year}",
}

NB = {
    "mail.reminder_prefix": "Påminnelse:",
    "reason.slow": "Det tok for lang tid",
    "reason.not_solved": "Problemet mitt ble ikke løst",
    "reason.unfriendly": "Betjeningen var uvennlig",
    "reason.unclear": "Svaret var vanskelig å forstå",
    "reason.other": "Noe annet",
    "followup.title": "Det var leit å høre",
    "followup.text": "Vi har registrert svaret ditt. Hva gikk galt? Svaret ditt hjelper oss å bli bedre.",
    "followup.legend": "Hva var hovedgrunnen?",
    "followup.error": "Velg en av grunnene i listen.",
    "mail.subject_order": 'Hvordan var bestillingen {ref}?',
    "mail.intro_order": 'Takk for bestillingen {ref}. Hvordan gjorde vi det? Det tar bare ett klikk å svare.',
    "mail.footer_order": 'Du får denne e-posten fordi du la inn bestilling {ref} hos oss.',
    "question_order.csat5": 'Hvor fornøyd er du med bestillingen din?',
    "question_order.csat3": 'Hvordan vil du vurdere bestillingen din?',
    "question_order.thumbs": 'Hvordan var bestillingen din?',
    "question_order.ces7": 'Hvor enkelt var det å bestille hos oss?',
    "page.error_title": 'Noe gikk galt',
    "page.error_text": 'Beklager, noe gikk galt hos oss. Prøv igjen om litt.',
    "page.unavailable_text": 'Tjenesten er midlertidig utilgjengelig. Prøv igjen om et minutt.',
    "page.change_link": 'Endre svaret ditt',
    "mail.subject": "Hvordan var hjelpen du fikk med «{subject}»?",
    "mail.subject_ref": "Hvordan var hjelpen du fikk med henvendelse {ref}?",
    "mail.greeting": "Hei,",
    "mail.greeting_name": "Hei {name},",
    "mail.intro": "Vi hjalp deg nylig med henvendelse {ref}. Hvordan synes du det gikk? "
                  "Det tar bare ett klikk å svare.",
    "mail.reply_hint": "Du kan også bare svare på denne e-posten med vurderingen din og "
                       "eventuelle kommentarer.",
    "mail.expires": "Lenken fungerer fram til {date}.",
    "mail.footer": "Du får denne e-posten fordi du kontaktet kundeservicen vår om sak {ref}.",
    "mail.unsubscribe": "Meld deg av disse undersøkelsene",
    "question.csat5": "Hvor fornøyd er du med hjelpen du fikk?",
    "question.csat3": "Hvordan vil du vurdere hjelpen du fikk?",
    "question.thumbs": "Hvordan var hjelpen du fikk?",
    "question.nps": "Hvor sannsynlig er det at du vil anbefale oss til en venn eller kollega?",
    "question.ces7": "Hvor enkelt var det å få løst saken din?",
    "label.csat5.1": "Svært misfornøyd", "label.csat5.2": "Misfornøyd", "label.csat5.3": "Nøytral",
    "label.csat5.4": "Fornøyd", "label.csat5.5": "Svært fornøyd",
    "label.csat3.1": "Dårlig", "label.csat3.2": "Greit", "label.csat3.3": "Bra",
    "label.thumbs.0": "Ikke bra", "label.thumbs.1": "Bra",
    "label.nps.0": "Svært lite sannsynlig", "label.nps.10": "Svært sannsynlig",
    "label.ces7.1": "Svært vanskelig", "label.ces7.2": "Vanskelig", "label.ces7.3": "Ganske vanskelig",
    "label.ces7.4": "Verken enkelt eller vanskelig", "label.ces7.5": "Ganske enkelt",
    "label.ces7.6": "Enkelt", "label.ces7.7": "Svært enkelt",
    "page.title": "Hvordan var hjelpen du fikk?",
    "page.rating_legend": "Din vurdering",
    "page.comment_label": "Er det noe du vil legge til? (valgfritt)",
    "page.submit": "Send",
    "page.thanks_title": "Tusen takk!",
    "page.thanks_text": "Vi har mottatt svaret ditt. Det hjelper oss å bli bedre.",
    "page.change_until": "Du kan endre svaret ditt fram til {date}.",
    "page.expired_title": "Undersøkelsen er avsluttet",
    "page.expired_text": "Lenken er ikke lenger aktiv, så vi kan ikke registrere svaret. "
                         "Takk likevel for at du ville hjelpe oss.",
    "page.not_found_title": "Fant ikke undersøkelsen",
    "page.not_found_text": "Lenken er ikke gyldig. Sjekk at du åpnet hele lenken fra e-posten.",
    "page.unsubscribed_title": "Du er meldt av",
    "page.unsubscribed_text": "Du får ikke flere tilfredshetsundersøkelser fra oss.",
    "page.unsubscribe_question": "Vil du slutte å få tilfredshetsundersøkelser fra oss?",
    "page.unsubscribe_button": "Meld meg av",
    "page.error_rating": "Velg en vurdering.",
    "date.format": "{day}. {month} {year}",
}

SV = {
    "mail.reminder_prefix": "Påminnelse:",
    "reason.slow": "Det tog för lång tid",
    "reason.not_solved": "Mitt problem blev inte löst",
    "reason.unfriendly": "Bemötandet var ovänligt",
    "reason.unclear": "Svaret var svårt att förstå",
    "reason.other": "Något annat",
    "followup.title": "Vad tråkigt att höra",
    "followup.text": "Vi har tagit emot ditt svar. Vad gick fel? Ditt svar hjälper oss att bli bättre.",
    "followup.legend": "Vad var den främsta anledningen?",
    "followup.error": "Välj en av anledningarna i listan.",
    "mail.subject_order": 'Hur var din beställning {ref}?',
    "mail.intro_order": 'Tack för din beställning {ref}. Hur gjorde vi? Det tar bara ett klick att svara.',
    "mail.footer_order": 'Du får det här mejlet eftersom du gjorde beställning {ref} hos oss.',
    "question_order.csat5": 'Hur nöjd är du med din beställning?',
    "question_order.csat3": 'Hur skulle du betygsätta din beställning?',
    "question_order.thumbs": 'Hur var din beställning?',
    "question_order.ces7": 'Hur enkelt var det att beställa hos oss?',
    "page.error_title": 'Något gick fel',
    "page.error_text": 'Tyvärr gick något fel hos oss. Försök igen om en stund.',
    "page.unavailable_text": 'Tjänsten är tillfälligt otillgänglig. Försök igen om en minut.',
    "page.change_link": 'Ändra ditt svar',
    "mail.subject": "Vad tyckte du om hjälpen med ”{subject}”?",
    "mail.subject_ref": "Vad tyckte du om hjälpen med ärende {ref}?",
    "mail.greeting": "Hej,",
    "mail.greeting_name": "Hej {name},",
    "mail.intro": "Vi hjälpte dig nyligen med ärende {ref}. Hur tycker du att det gick? "
                  "Det räcker med ett klick för att svara.",
    "mail.reply_hint": "Du kan också svara direkt på det här mejlet med ditt betyg och "
                       "eventuella kommentarer.",
    "mail.expires": "Länken fungerar fram till {date}.",
    "mail.footer": "Du får det här mejlet eftersom du kontaktade vår kundtjänst om ärende {ref}.",
    "mail.unsubscribe": "Avregistrera dig från de här enkäterna",
    "question.csat5": "Hur nöjd är du med hjälpen du fick?",
    "question.csat3": "Hur skulle du betygsätta hjälpen du fick?",
    "question.thumbs": "Hur var hjälpen du fick?",
    "question.nps": "Hur troligt är det att du skulle rekommendera oss till en vän eller kollega?",
    "question.ces7": "Hur lätt var det att få ditt ärende löst?",
    "label.csat5.1": "Mycket missnöjd", "label.csat5.2": "Missnöjd", "label.csat5.3": "Neutral",
    "label.csat5.4": "Nöjd", "label.csat5.5": "Mycket nöjd",
    "label.csat3.1": "Dåligt", "label.csat3.2": "Okej", "label.csat3.3": "Bra",
    "label.thumbs.0": "Inte bra", "label.thumbs.1": "Bra",
    "label.nps.0": "Inte alls troligt", "label.nps.10": "Mycket troligt",
    "label.ces7.1": "Mycket svårt", "label.ces7.2": "Svårt", "label.ces7.3": "Ganska svårt",
    "label.ces7.4": "Varken lätt eller svårt", "label.ces7.5": "Ganska lätt", "label.ces7.6": "Lätt",
    "label.ces7.7": "Mycket lätt",
    "page.title": "Vad tyckte du om hjälpen?",
    "page.rating_legend": "Ditt betyg",
    "page.comment_label": "Vill du lägga till något? (valfritt)",
    "page.submit": "Skicka",
    "page.thanks_title": "Tack!",
    "page.thanks_text": "Vi har tagit emot ditt svar. Det hjälper oss att bli bättre.",
    "page.change_until": "Du kan ändra ditt svar fram till {date}.",
    "page.expired_title": "Enkäten är avslutad",
    "page.expired_text": "Länken är inte längre aktiv, så vi kan inte registrera något svar. "
                         "Tack ändå för att du ville hjälpa oss.",
    "page.not_found_title": "Enkäten hittades inte",
    "page.not_found_text": "Länken är inte giltig. Kontrollera att du öppnade hela länken från mejlet.",
    "page.unsubscribed_title": "Du är avregistrerad",
    "page.unsubscribed_text": "Du får inga fler kundnöjdhetsenkäter från oss.",
    "page.unsubscribe_question": "Vill du sluta få kundnöjdhetsenkäter från oss?",
    "page.unsubscribe_button": "Avregistrera mig",
    "page.error_rating": "Välj ett betyg.",
    "date.format": "{day} {month} {year}",
}

DA = {
    "mail.reminder_prefix": "Påmindelse:",
    "reason.slow": "Det tog for lang tid",
    "reason.not_solved": "Mit problem blev ikke løst",
    "reason.unfriendly": "Betjeningen var uvenlig",
    "reason.unclear": "Svaret var svært at forstå",
    "reason.other": "Noget andet",
    "followup.title": "Det er vi kede af at høre",
    "followup.text": "Vi har modtaget dit svar. Hvad gik galt? Dit svar hjælper os med at blive bedre.",
    "followup.legend": "Hvad var hovedårsagen?",
    "followup.error": "Vælg en af årsagerne på listen.",
    "mail.subject_order": 'Hvordan var din ordre {ref}?',
    "mail.intro_order": 'Tak for din ordre {ref}. Hvordan klarede vi det? Det tager kun ét klik at svare.',
    "mail.footer_order": 'Du modtager denne e-mail, fordi du har afgivet ordre {ref} hos os.',
    "question_order.csat5": 'Hvor tilfreds er du med din ordre?',
    "question_order.csat3": 'Hvordan vil du bedømme din ordre?',
    "question_order.thumbs": 'Hvordan var din ordre?',
    "question_order.ces7": 'Hvor nemt var det at bestille hos os?',
    "page.error_title": 'Noget gik galt',
    "page.error_text": 'Beklager, noget gik galt hos os. Prøv igen om lidt.',
    "page.unavailable_text": 'Tjenesten er midlertidigt utilgængelig. Prøv igen om et minut.',
    "page.change_link": 'Ret dit svar',
    "mail.subject": "Hvordan var hjælpen med »{subject}«?",
    "mail.subject_ref": "Hvordan var hjælpen med sag {ref}?",
    "mail.greeting": "Hej,",
    "mail.greeting_name": "Hej {name},",
    "mail.intro": "Vi hjalp dig for nylig med sag {ref}. Hvordan synes du, det gik? "
                  "Det kræver kun ét klik at svare.",
    "mail.reply_hint": "Du kan også bare svare på denne e-mail med din vurdering og eventuelle kommentarer.",
    "mail.expires": "Linket virker indtil {date}.",
    "mail.footer": "Du modtager denne e-mail, fordi du kontaktede vores kundeservice om sag {ref}.",
    "mail.unsubscribe": "Afmeld disse undersøgelser",
    "question.csat5": "Hvor tilfreds er du med den hjælp, du fik?",
    "question.csat3": "Hvordan vil du vurdere den hjælp, du fik?",
    "question.thumbs": "Hvordan var den hjælp, du fik?",
    "question.nps": "Hvor sandsynligt er det, at du vil anbefale os til en ven eller kollega?",
    "question.ces7": "Hvor nemt var det at få løst din sag?",
    "label.csat5.1": "Meget utilfreds", "label.csat5.2": "Utilfreds", "label.csat5.3": "Neutral",
    "label.csat5.4": "Tilfreds", "label.csat5.5": "Meget tilfreds",
    "label.csat3.1": "Dårlig", "label.csat3.2": "Okay", "label.csat3.3": "God",
    "label.thumbs.0": "Ikke god", "label.thumbs.1": "God",
    "label.nps.0": "Slet ikke sandsynligt", "label.nps.10": "Meget sandsynligt",
    "label.ces7.1": "Meget svært", "label.ces7.2": "Svært", "label.ces7.3": "Forholdsvis svært",
    "label.ces7.4": "Hverken nemt eller svært", "label.ces7.5": "Forholdsvis nemt", "label.ces7.6": "Nemt",
    "label.ces7.7": "Meget nemt",
    "page.title": "Hvordan var hjælpen?",
    "page.rating_legend": "Din vurdering",
    "page.comment_label": "Er der noget, du vil tilføje? (valgfrit)",
    "page.submit": "Send",
    "page.thanks_title": "Tak!",
    "page.thanks_text": "Vi har modtaget dit svar. Det hjælper os med at blive bedre.",
    "page.change_until": "Du kan ændre dit svar indtil {date}.",
    "page.expired_title": "Undersøgelsen er lukket",
    "page.expired_text": "Linket er ikke længere aktivt, så vi kan ikke registrere dit svar. "
                         "Tak alligevel, fordi du ville hjælpe os.",
    "page.not_found_title": "Undersøgelsen blev ikke fundet",
    "page.not_found_text": "Linket er ikke gyldigt. Tjek, at du har åbnet hele linket fra e-mailen.",
    "page.unsubscribed_title": "Du er afmeldt",
    "page.unsubscribed_text": "Du modtager ikke flere tilfredshedsundersøgelser fra os.",
    "page.unsubscribe_question": "Vil du stoppe med at modtage tilfredshedsundersøgelser fra os?",
    "page.unsubscribe_button": "Afmeld",
    "page.error_rating": "Vælg en vurdering.",
    "date.format": "{day}. {month} {year}",
}

DE = {
    "mail.reminder_prefix": "Erinnerung:",
    "reason.slow": "Es hat zu lange gedauert",
    "reason.not_solved": "Mein Problem wurde nicht gelöst",
    "reason.unfriendly": "Der Umgang war unfreundlich",
    "reason.unclear": "Die Antwort war schwer zu verstehen",
    "reason.other": "Etwas anderes",
    "followup.title": "Das tut uns leid",
    "followup.text": "Wir haben Ihre Antwort erhalten. Was ist schiefgelaufen? "
                     "Ihre Rückmeldung hilft uns, besser zu werden.",
    "followup.legend": "Was war der Hauptgrund?",
    "followup.error": "Bitte wählen Sie einen der aufgeführten Gründe.",
    "mail.subject_order": 'Wie war Ihre Bestellung {ref}?',
    "mail.intro_order": ('Vielen Dank für Ihre Bestellung {ref}. Wie haben wir es gemacht? Die '
        'Antwort kostet Sie nur einen Klick.'),
    "mail.footer_order": 'Sie erhalten diese E-Mail, weil Sie bei uns die Bestellung {ref} aufgegeben haben.',
    "question_order.csat5": 'Wie zufrieden sind Sie mit Ihrer Bestellung?',
    "question_order.csat3": 'Wie bewerten Sie Ihre Bestellung?',
    "question_order.thumbs": 'Wie war Ihre Bestellung?',
    "question_order.ces7": 'Wie einfach war es, bei uns zu bestellen?',
    "page.error_title": 'Etwas ist schiefgelaufen',
    "page.error_text": ('Entschuldigung, bei uns ist etwas schiefgelaufen. Bitte '
        'versuchen Sie es gleich noch einmal.'),
    "page.unavailable_text": ('Der Dienst ist kurz nicht erreichbar. Bitte versuchen Sie '
        'es in einer Minute erneut.'),
    "page.change_link": 'Antwort ändern',
    "mail.subject": "Wie zufrieden waren Sie mit unserer Hilfe zu „{subject}“?",
    "mail.subject_ref": "Wie zufrieden waren Sie mit unserer Hilfe zu Ihrer Anfrage {ref}?",
    "mail.greeting": "Hallo,",
    "mail.greeting_name": "Hallo {name},",
    "mail.intro": "Wir haben Ihnen vor Kurzem bei Ihrer Anfrage {ref} geholfen. Wie war es für Sie? "
                  "Ein Klick genügt.",
    "mail.reply_hint": "Sie können auch einfach auf diese E-Mail antworten – mit Ihrer Bewertung und gern "
                       "einem Kommentar.",
    "mail.expires": "Der Link ist bis zum {date} gültig.",
    "mail.footer": "Sie erhalten diese E-Mail, weil Sie unseren Support zum Ticket {ref} kontaktiert haben.",
    "mail.unsubscribe": "Von diesen Umfragen abmelden",
    "question.csat5": "Wie zufrieden sind Sie mit der Unterstützung, die Sie erhalten haben?",
    "question.csat3": "Wie bewerten Sie die Unterstützung, die Sie erhalten haben?",
    "question.thumbs": "Wie war die Unterstützung, die Sie erhalten haben?",
    "question.nps": "Wie wahrscheinlich ist es, dass Sie uns einem Freund oder Kollegen weiterempfehlen?",
    "question.ces7": "Wie einfach war es für Sie, Ihr Anliegen zu klären?",
    "label.csat5.1": "Sehr unzufrieden", "label.csat5.2": "Unzufrieden", "label.csat5.3": "Neutral",
    "label.csat5.4": "Zufrieden", "label.csat5.5": "Sehr zufrieden",
    "label.csat3.1": "Schlecht", "label.csat3.2": "In Ordnung", "label.csat3.3": "Gut",
    "label.thumbs.0": "Nicht gut", "label.thumbs.1": "Gut",
    "label.nps.0": "Überhaupt nicht wahrscheinlich", "label.nps.10": "Äußerst wahrscheinlich",
    "label.ces7.1": "Sehr schwierig", "label.ces7.2": "Schwierig", "label.ces7.3": "Eher schwierig",
    "label.ces7.4": "Weder einfach noch schwierig", "label.ces7.5": "Eher einfach", "label.ces7.6": "Einfach",
    "label.ces7.7": "Sehr einfach",
    "page.title": "Wie war unsere Unterstützung?",
    "page.rating_legend": "Ihre Bewertung",
    "page.comment_label": "Möchten Sie noch etwas hinzufügen? (optional)",
    "page.submit": "Absenden",
    "page.thanks_title": "Vielen Dank!",
    "page.thanks_text": "Wir haben Ihre Antwort erhalten. Sie hilft uns, besser zu werden.",
    "page.change_until": "Sie können Ihre Antwort bis zum {date} ändern.",
    "page.expired_title": "Diese Umfrage ist beendet",
    "page.expired_text": "Der Link ist nicht mehr aktiv, daher können wir keine Antwort mehr speichern. "
                         "Trotzdem vielen Dank, dass Sie uns helfen wollten.",
    "page.not_found_title": "Umfrage nicht gefunden",
    "page.not_found_text": "Dieser Link ist ungültig. Bitte prüfen Sie, ob Sie den vollständigen Link aus "
                           "der E-Mail geöffnet haben.",
    "page.unsubscribed_title": "Sie wurden abgemeldet",
    "page.unsubscribed_text": "Sie erhalten keine Zufriedenheitsumfragen mehr von uns.",
    "page.unsubscribe_question": "Möchten Sie keine Zufriedenheitsumfragen mehr von uns erhalten?",
    "page.unsubscribe_button": "Abmelden",
    "page.error_rating": "Bitte wählen Sie eine Bewertung.",
    "date.format": "{day}. {month} {year}",
}

# French typography puts a no-break space inside guillemets and before ? ! : ;
FR = {
    "mail.reminder_prefix": "Rappel\u00a0:",
    "reason.slow": "Cela a pris trop de temps",
    "reason.not_solved": "Mon problème n’a pas été résolu",
    "reason.unfriendly": "L’accueil n’était pas aimable",
    "reason.unclear": "La réponse était difficile à comprendre",
    "reason.other": "Autre chose",
    "followup.title": "Nous en sommes désolés",
    "followup.text": "Nous avons bien reçu votre réponse. Qu’est-ce qui n’a pas fonctionné\u00a0? "
                     "Votre retour nous aide à nous améliorer.",
    "followup.legend": "Quelle était la raison principale\u00a0?",
    "followup.error": "Veuillez choisir l’une des raisons proposées.",
    "mail.subject_order": 'Comment s’est passée votre commande {ref} ?',
    "mail.intro_order": ('Merci pour votre commande {ref}. Qu’en avez-vous pensé ? Un seul clic '
        'suffit pour répondre.'),
    "mail.footer_order": 'Vous recevez cet e-mail parce que vous avez passé la commande {ref} chez nous.',
    "question_order.csat5": 'Dans quelle mesure êtes-vous satisfait de votre commande ?',
    "question_order.csat3": 'Comment évaluez-vous votre commande ?',
    "question_order.thumbs": 'Comment s’est passée votre commande ?',
    "question_order.ces7": 'Était-il facile de commander chez nous ?',
    "page.error_title": 'Un problème est survenu',
    "page.error_text": 'Désolés, un problème est survenu de notre côté. Veuillez réessayer dans un instant.',
    "page.unavailable_text": 'Le service est momentanément indisponible. Veuillez réessayer dans une minute.',
    "page.change_link": 'Modifier votre réponse',
    "mail.subject": "Que pensez-vous de notre aide pour «\u00a0{subject}\u00a0»\u00a0?",
    "mail.subject_ref": "Que pensez-vous de notre aide pour votre demande {ref}\u00a0?",
    "mail.greeting": "Bonjour,",
    "mail.greeting_name": "Bonjour {name},",
    "mail.intro": "Nous avons récemment traité votre demande {ref}. Comment cela s’est-il passé\u00a0? "
                  "Un seul clic suffit pour répondre.",
    "mail.reply_hint": "Vous pouvez aussi simplement répondre à cet e-mail avec votre note et vos "
                       "éventuels commentaires.",
    "mail.expires": "Le lien est valable jusqu’au {date}.",
    "mail.footer": "Vous recevez ce message car vous avez contacté notre service client au sujet de la "
                   "demande {ref}.",
    "mail.unsubscribe": "Se désabonner de ces enquêtes",
    "question.csat5": "Quel est votre niveau de satisfaction concernant l’aide reçue\u00a0?",
    "question.csat3": "Comment évaluez-vous l’aide reçue\u00a0?",
    "question.thumbs": "Comment avez-vous trouvé l’aide reçue\u00a0?",
    "question.nps": "Quelle est la probabilité que vous nous recommandiez à un ami ou à un collègue\u00a0?",
    "question.ces7": "Dans quelle mesure a-t-il été facile de résoudre votre problème\u00a0?",
    "label.csat5.1": "Très insatisfait", "label.csat5.2": "Insatisfait", "label.csat5.3": "Neutre",
    "label.csat5.4": "Satisfait", "label.csat5.5": "Très satisfait",
    "label.csat3.1": "Mauvais", "label.csat3.2": "Correct", "label.csat3.3": "Bien",
    "label.thumbs.0": "Pas bien", "label.thumbs.1": "Bien",
    "label.nps.0": "Pas du tout probable", "label.nps.10": "Extrêmement probable",
    "label.ces7.1": "Très difficile", "label.ces7.2": "Difficile", "label.ces7.3": "Plutôt difficile",
    "label.ces7.4": "Ni facile ni difficile", "label.ces7.5": "Plutôt facile", "label.ces7.6": "Facile",
    "label.ces7.7": "Très facile",
    "page.title": "Votre avis sur notre aide",
    "page.rating_legend": "Votre note",
    "page.comment_label": "Souhaitez-vous ajouter quelque chose\u00a0? (facultatif)",
    "page.submit": "Envoyer",
    "page.thanks_title": "Merci\u00a0!",
    "page.thanks_text": "Nous avons bien reçu votre réponse. Elle nous aide à nous améliorer.",
    "page.change_until": "Vous pouvez modifier votre réponse jusqu’au {date}.",
    "page.expired_title": "Cette enquête est close",
    "page.expired_text": "Le lien n’est plus actif\u00a0: nous ne pouvons plus enregistrer de réponse. "
                         "Merci tout de même d’avoir voulu nous aider.",
    "page.not_found_title": "Enquête introuvable",
    "page.not_found_text": "Ce lien n’est pas valide. Vérifiez que vous avez ouvert le lien complet depuis "
                           "l’e-mail.",
    "page.unsubscribed_title": "Votre désabonnement est confirmé",
    "page.unsubscribed_text": "Vous ne recevrez plus d’enquêtes de satisfaction de notre part.",
    "page.unsubscribe_question": "Voulez-vous ne plus recevoir nos enquêtes de satisfaction\u00a0?",
    "page.unsubscribe_button": "Me désabonner",
    "page.error_rating": "Veuillez choisir une note.",
    "date.format": "{day} {month} {year}",
}

ES = {
    "mail.reminder_prefix": "Recordatorio:",
    "reason.slow": "Tardó demasiado",
    "reason.not_solved": "Mi problema no se resolvió",
    "reason.unfriendly": "El trato no fue amable",
    "reason.unclear": "La respuesta fue difícil de entender",
    "reason.other": "Otra cosa",
    "followup.title": "Lamentamos oírlo",
    "followup.text": "Hemos recibido su respuesta. ¿Qué salió mal? Sus comentarios nos ayudan a mejorar.",
    "followup.legend": "¿Cuál fue el motivo principal?",
    "followup.error": "Elija uno de los motivos de la lista.",
    "mail.subject_order": '¿Qué tal fue su pedido {ref}?',
    "mail.intro_order": ('Gracias por su pedido {ref}. ¿Qué tal lo hicimos? Solo tiene que '
        'hacer un clic para responder.'),
    "mail.footer_order": 'Recibe este correo porque realizó el pedido {ref} con nosotros.',
    "question_order.csat5": '¿Qué grado de satisfacción tiene con su pedido?',
    "question_order.csat3": '¿Cómo valoraría su pedido?',
    "question_order.thumbs": '¿Qué tal fue su pedido?',
    "question_order.ces7": '¿Qué tan fácil le resultó hacer el pedido con nosotros?',
    "page.error_title": 'Algo ha fallado',
    "page.error_text": 'Lo sentimos, algo ha fallado por nuestra parte. Vuelva a intentarlo en un momento.',
    "page.unavailable_text": ('El servicio no está disponible en este momento. Vuelva a '
        'intentarlo en un minuto.'),
    "page.change_link": 'Cambiar su respuesta',
    "mail.subject": "¿Qué le pareció nuestra ayuda con «{subject}»?",
    "mail.subject_ref": "¿Qué le pareció nuestra ayuda con su solicitud {ref}?",
    "mail.greeting": "Hola:",
    "mail.greeting_name": "Hola, {name}:",
    "mail.intro": "Hace poco le ayudamos con su solicitud {ref}. ¿Qué tal lo hicimos? "
                  "Responder solo le llevará un clic.",
    "mail.reply_hint": "También puede responder directamente a este correo con su valoración y cualquier "
                       "comentario.",
    "mail.expires": "El enlace funciona hasta el {date}.",
    "mail.footer": "Recibe este mensaje porque contactó con nuestro servicio de atención al cliente por la "
                   "solicitud {ref}.",
    "mail.unsubscribe": "Darse de baja de estas encuestas",
    "question.csat5": "¿Cuál es su grado de satisfacción con la ayuda recibida?",
    "question.csat3": "¿Cómo valora la ayuda recibida?",
    "question.thumbs": "¿Qué le pareció la ayuda recibida?",
    "question.nps": "¿Qué probabilidad hay de que nos recomiende a un amigo o colega?",
    "question.ces7": "¿En qué medida le resultó fácil resolver su consulta?",
    "label.csat5.1": "Muy insatisfecho", "label.csat5.2": "Insatisfecho", "label.csat5.3": "Neutral",
    "label.csat5.4": "Satisfecho", "label.csat5.5": "Muy satisfecho",
    "label.csat3.1": "Mala", "label.csat3.2": "Regular", "label.csat3.3": "Buena",
    "label.thumbs.0": "Mala", "label.thumbs.1": "Buena",
    "label.nps.0": "Nada probable", "label.nps.10": "Extremadamente probable",
    "label.ces7.1": "Muy difícil", "label.ces7.2": "Difícil", "label.ces7.3": "Algo difícil",
    "label.ces7.4": "Ni fácil ni difícil", "label.ces7.5": "Algo fácil", "label.ces7.6": "Fácil",
    "label.ces7.7": "Muy fácil",
    "page.title": "¿Qué le pareció nuestra ayuda?",
    "page.rating_legend": "Su valoración",
    "page.comment_label": "¿Quiere añadir algo? (opcional)",
    "page.submit": "Enviar",
    "page.thanks_title": "¡Gracias!",
    "page.thanks_text": "Hemos recibido su respuesta. Nos ayuda a mejorar.",
    "page.change_until": "Puede cambiar su respuesta hasta el {date}.",
    "page.expired_title": "Esta encuesta ha finalizado",
    "page.expired_text": "El enlace ya no está activo, así que no podemos registrar su respuesta. "
                         "Gracias de todos modos por querer ayudarnos.",
    "page.not_found_title": "Encuesta no encontrada",
    "page.not_found_text": "Este enlace no es válido. "
                           "Compruebe que ha abierto el enlace completo del correo.",
    "page.unsubscribed_title": "Se ha dado de baja",
    "page.unsubscribed_text": "Ya no recibirá más encuestas de satisfacción de nuestra parte.",
    "page.unsubscribe_question": "¿Quiere dejar de recibir nuestras encuestas de satisfacción?",
    "page.unsubscribe_button": "Darme de baja",
    "page.error_rating": "Elija una valoración.",
    "date.format": "{day} de {month} de {year}",
}

NL = {
    "mail.reminder_prefix": "Herinnering:",
    "reason.slow": "Het duurde te lang",
    "reason.not_solved": "Mijn probleem is niet opgelost",
    "reason.unfriendly": "De medewerker was onvriendelijk",
    "reason.unclear": "Het antwoord was moeilijk te begrijpen",
    "reason.other": "Iets anders",
    "followup.title": "Dat vinden we jammer",
    "followup.text": "We hebben uw antwoord ontvangen. Wat ging er mis? Uw reactie helpt ons beter te worden.",
    "followup.legend": "Wat was de belangrijkste reden?",
    "followup.error": "Kies een van de genoemde redenen.",
    "mail.subject_order": 'Hoe was uw bestelling {ref}?',
    "mail.intro_order": 'Bedankt voor uw bestelling {ref}. Hoe hebben we het gedaan? Antwoorden kost maar één klik.',
    "mail.footer_order": 'U ontvangt deze e-mail omdat u bestelling {ref} bij ons hebt geplaatst.',
    "question_order.csat5": 'Hoe tevreden bent u met uw bestelling?',
    "question_order.csat3": 'Hoe beoordeelt u uw bestelling?',
    "question_order.thumbs": 'Hoe was uw bestelling?',
    "question_order.ces7": 'Hoe makkelijk was het om bij ons te bestellen?',
    "page.error_title": 'Er ging iets mis',
    "page.error_text": 'Sorry, er ging bij ons iets mis. Probeer het zo nog eens.',
    "page.unavailable_text": 'De dienst is even niet beschikbaar. Probeer het over een minuut opnieuw.',
    "page.change_link": 'Uw antwoord wijzigen',
    "mail.subject": "Hoe tevreden bent u over onze hulp bij ‘{subject}’?",
    "mail.subject_ref": "Hoe tevreden bent u over onze hulp bij uw verzoek {ref}?",
    "mail.greeting": "Beste klant,",
    "mail.greeting_name": "Beste {name},",
    "mail.intro": "We hebben u onlangs geholpen met uw verzoek {ref}. Hoe vond u het gaan? "
                  "Eén klik is genoeg om te antwoorden.",
    "mail.reply_hint": "U kunt ook gewoon op deze e-mail antwoorden met uw beoordeling en eventuele "
                       "opmerkingen.",
    "mail.expires": "De link is geldig tot {date}.",
    "mail.footer": "U ontvangt dit bericht omdat u contact hebt opgenomen met onze klantenservice over "
                   "verzoek {ref}.",
    "mail.unsubscribe": "Afmelden voor deze enquêtes",
    "question.csat5": "Hoe tevreden bent u met de hulp die u hebt gekregen?",
    "question.csat3": "Hoe beoordeelt u de hulp die u hebt gekregen?",
    "question.thumbs": "Hoe was de hulp die u hebt gekregen?",
    "question.nps": "Hoe waarschijnlijk is het dat u ons zou aanbevelen aan een vriend of collega?",
    "question.ces7": "Hoe gemakkelijk was het om uw probleem opgelost te krijgen?",
    "label.csat5.1": "Zeer ontevreden", "label.csat5.2": "Ontevreden", "label.csat5.3": "Neutraal",
    "label.csat5.4": "Tevreden", "label.csat5.5": "Zeer tevreden",
    "label.csat3.1": "Slecht", "label.csat3.2": "Oké", "label.csat3.3": "Goed",
    "label.thumbs.0": "Niet goed", "label.thumbs.1": "Goed",
    "label.nps.0": "Helemaal niet waarschijnlijk", "label.nps.10": "Zeer waarschijnlijk",
    "label.ces7.1": "Zeer moeilijk", "label.ces7.2": "Moeilijk", "label.ces7.3": "Enigszins moeilijk",
    "label.ces7.4": "Niet gemakkelijk en niet moeilijk", "label.ces7.5": "Enigszins gemakkelijk",
    "label.ces7.6": "Gemakkelijk", "label.ces7.7": "Zeer gemakkelijk",
    "page.title": "Hoe tevreden bent u over onze hulp?",
    "page.rating_legend": "Uw beoordeling",
    "page.comment_label": "Wilt u nog iets toevoegen? (optioneel)",
    "page.submit": "Versturen",
    "page.thanks_title": "Bedankt!",
    "page.thanks_text": "We hebben uw antwoord ontvangen. Het helpt ons om beter te worden.",
    "page.change_until": "U kunt uw antwoord wijzigen tot {date}.",
    "page.expired_title": "Deze enquête is gesloten",
    "page.expired_text": "De link is niet meer actief, dus we kunnen geen antwoord meer vastleggen. "
                         "Toch bedankt dat u wilde helpen.",
    "page.not_found_title": "Enquête niet gevonden",
    "page.not_found_text": "Deze link is ongeldig. "
                           "Controleer of u de volledige link uit de e-mail hebt geopend.",
    "page.unsubscribed_title": "U bent afgemeld",
    "page.unsubscribed_text": "U ontvangt geen tevredenheidsenquêtes meer van ons.",
    "page.unsubscribe_question": "Wilt u geen tevredenheidsenquêtes meer van ons ontvangen?",
    "page.unsubscribe_button": "Afmelden",
    "page.error_rating": "Kies een beoordeling.",
    "date.format": "{day} {month} {year}",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "nb": NB, "sv": SV, "da": DA, "de": DE, "fr": FR,
                                         "es": ES, "nl": NL}
MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"),
    "nb": ("januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
           "november", "desember"),
    "sv": ("januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
           "november", "december"),
    "da": ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober",
           "november", "december"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
}


def normalise_locale(raw: str | None) -> str:
    """Map a customer's locale, language name or Accept-Language value to a supported language."""
    if not raw:
        return DEFAULT
    for entry in raw.split(","):
        candidate = entry.split(";")[0].strip().lower()
        candidate = re.split(r"[.@]", candidate)[0].replace("_", "-")
        candidate = re.sub(r"\s*\(([^)]*)\)", r" \1", candidate).strip()
        if candidate in ALIASES:
            return ALIASES[candidate]
        primary = candidate.split("-")[0].strip()
        if primary in SUPPORTED:
            return primary
        if primary in ALIASES:
            return ALIASES[primary]
    return DEFAULT


def text(lang: str, key: str, **params: object) -> str:
    """Return the string for key in lang (English where lang lacks it), with params filled in."""
    catalogue = CATALOGUES.get(lang) or CATALOGUES[normalise_locale(lang)]
    template = catalogue.get(key) or CATALOGUES[DEFAULT][key]
    return template.format(**params) if params else template


def scale_labels(lang: str, scale_name: str) -> list[tuple[int, str]]:
    """Return (value, label) for every value of a scale; values without a word are labelled by number."""
    labels = []
    for value in SCALES[scale_name].values:
        key = f"label.{scale_name}.{value}"
        if key in CATALOGUES[DEFAULT]:
            labels.append((value, text(lang, key)))
        else:
            labels.append((value, str(value)))
    return labels


def format_date(lang: str, day: date) -> str:
    """Format a date the way a reader of lang writes it, e.g. "6. desember 2026"."""
    lang = lang if lang in CATALOGUES else normalise_locale(lang)
    month = MONTHS[lang][day.month - 1]
    # French writes the first of the month as an ordinal ("1er janvier").
    number = "1er" if lang == "fr" and day.day == 1 else str(day.day)
    return text(lang, "date.format", day=number, month=month, year=day.year)


def survey_question(lang: str, scale_name: str, kind: str = "ticket") -> str:
    """Return the question of a scale, asked about a support request or (kind "order") a purchase."""
    if kind == "order" and f"question_order.{scale_name}" in CATALOGUES[DEFAULT]:
        return text(lang, f"question_order.{scale_name}")
    return text(lang, f"question.{scale_name}")

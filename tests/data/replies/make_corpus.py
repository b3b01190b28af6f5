"""Builds the labelled reply corpus (dev.jsonl, test.jsonl) from the phrasings below.

The phrasings were written from sources independent of the reader's vocabulary, before it
was extended: MedlinePlus symptom pages in English and Spanish (swallowing problems /
problemas para tragar, breathing difficulty / dificultad para respirar, speech impairment /
trastornos del habla, hoarseness / ronquera, blurred and double vision / vision borrosa y
doble, weakness / debilidad), the wording of the medicine's patient medication guide
"spread of toxin effect" warning (loss of strength and muscle weakness all over the body,
double or blurred vision, drooping eyelids, hoarseness or change or loss of voice, trouble
saying words clearly, trouble breathing, trouble swallowing), consumer-health lay terms,
texting shorthand, negated lists, hedges, questions and reports about someone else.

Each pool is split by position: even entries build the development part, odd entries the
frozen test part, so the two parts share no phrasing. Frames and perturbations (typos in
the symptom words, case, accents, emoji, greetings) are drawn with a fixed seed.

    python tests/data/replies/make_corpus.py   # rewrites dev.jsonl, test.jsonl and holdout.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
SEED = 20261125

# --- red flags in the patient's words (code, text, source) --------------------------------

RED_FLAGS_EN = [
    ("dysphagia", "trouble swallowing", "med-guide"),
    ("dysphagia", "food feels stuck in my throat", "medlineplus-en"),
    ("dysphagia", "pills won't go down", "lay"),
    ("dysphagia", "I keep choking on water", "medlineplus-en"),
    ("dysphagia", "it's hard to get food down", "lay"),
    ("dysphagia", "it feels like a lump when I gulp", "lay"),
    ("dysphagia", "I gag when I try to eat", "medlineplus-en"),
    ("dysphagia", "coughing every time I drink something", "medlineplus-en"),
    ("dysphagia", "can't get my pills down", "lay"),
    ("dysphagia", "hurts to swallow and food sticks", "medlineplus-en"),
    ("dysphagia", "everything I eat goes down the wrong way", "lay"),
    ("dysphagia", "I have to swallow several times for each bite", "medlineplus-en"),
    ("dysphagia", "water goes down the wrong pipe", "lay"),
    ("dysphagia", "struggling to swallow my food", "lay"),
    ("dysphagia", "my throat feels blocked when I eat", "lay"),
    ("dysphagia", "can barely get soup down", "lay"),
    ("dysphagia", "food gets caught halfway down", "medlineplus-en"),
    ("dysphagia", "pills get stuck", "lay"),
    ("dysphagia", "difficulty swallowing", "chv"),
    ("dysphagia", "choking on my food", "chv"),
    ("dyspnea", "short of breath", "chv"),
    ("dyspnea", "I can't catch my breath", "lay"),
    ("dyspnea", "can't get enough air", "medlineplus-en"),
    ("dyspnea", "I get winded just walking to the kitchen", "lay"),
    ("dyspnea", "gasping for air", "medlineplus-en"),
    ("dyspnea", "my chest feels tight and I can't breathe deep", "medlineplus-en"),
    ("dyspnea", "out of breath all the time", "chv"),
    ("dyspnea", "breathing is hard", "med-guide"),
    ("dyspnea", "feels like I'm suffocating", "lay"),
    ("dyspnea", "I feel like I can't get air in", "lay"),
    ("dyspnea", "huffing and puffing after a few steps", "lay"),
    ("dyspnea", "hard to breathe lying down", "medlineplus-en"),
    ("dyspnea", "my breathing is labored", "chv"),
    ("dyspnea", "winded climbing stairs, never used to be", "lay"),
    ("dyspnea", "trouble breathing", "med-guide"),
    ("dyspnea", "shortness of breath", "chv"),
    ("dysarthria", "my words come out wrong", "lay"),
    ("dysarthria", "my speech is slurred", "medlineplus-en"),
    ("dysarthria", "trouble saying words clearly", "med-guide"),
    ("dysarthria", "my voice changed", "med-guide"),
    ("dysarthria", "I lost my voice", "med-guide"),
    ("dysarthria", "I'm hoarse", "med-guide"),
    ("dysarthria", "my voice is hoarse and weak", "medlineplus-en"),
    ("dysarthria", "I sound drunk when I talk", "lay"),
    ("dysarthria", "people can't understand me when I talk", "medlineplus-en"),
    ("dysarthria", "mumbling my words", "medlineplus-en"),
    ("dysarthria", "my tongue feels thick and words are hard", "lay"),
    ("dysarthria", "I can't get my words out", "lay"),
    ("dysarthria", "voice sounds different, raspy", "medlineplus-en"),
    ("dysarthria", "my voice is gone", "lay"),
    ("dysarthria", "talking is hard", "lay"),
    ("dysarthria", "hoarseness", "med-guide"),
    ("vision", "blurry vision", "med-guide"),
    ("vision", "I'm seeing double", "medlineplus-en"),
    ("vision", "my eyes won't work together", "lay"),
    ("vision", "everything looks fuzzy", "lay"),
    ("vision", "seeing two of everything", "medlineplus-en"),
    ("vision", "my sight is blurry", "chv"),
    ("vision", "things look out of focus", "medlineplus-en"),
    ("vision", "I can't see clearly", "medlineplus-en"),
    ("vision", "eyes are blurry when I read", "lay"),
    ("vision", "my eyes won't focus", "lay"),
    ("vision", "vision is hazy", "medlineplus-en"),
    ("vision", "I see two of the TV", "lay"),
    ("vision", "everything is doubled", "lay"),
    ("vision", "my eyesight went bad", "lay"),
    ("vision", "double vision", "med-guide"),
    ("vision", "blurred eyes", "chv"),
    ("generalized_weakness", "weak all over", "med-guide"),
    ("generalized_weakness", "my arms and legs feel heavy", "lay"),
    ("generalized_weakness", "no strength anywhere in my body", "med-guide"),
    ("generalized_weakness", "I lost my strength", "med-guide"),
    ("generalized_weakness", "muscle weakness all over my body", "med-guide"),
    ("generalized_weakness", "my legs give out", "medlineplus-en"),
    ("generalized_weakness", "I can hardly lift my arms", "medlineplus-en"),
    ("generalized_weakness", "my whole body feels like jelly", "lay"),
    ("generalized_weakness", "too weak to get out of bed", "lay"),
    ("generalized_weakness", "can't climb stairs, legs too weak", "medlineplus-en"),
    ("generalized_weakness", "arms and legs weak", "lay"),
    ("generalized_weakness", "I feel floppy everywhere", "lay"),
    ("generalized_weakness", "I have no strength in my arms or legs", "medlineplus-en"),
    ("generalized_weakness", "can't hold my coffee cup, hands too weak", "lay"),
    ("generalized_weakness", "loss of strength", "med-guide"),
    ("generalized_weakness", "my body feels weak", "chv"),
]

RED_FLAGS_ES = [
    ("dysphagia", "se me atora la comida en la garganta", "medlineplus-es"),
    ("dysphagia", "me cuesta tragar", "medlineplus-es"),
    ("dysphagia", "no me pasan las pastillas", "lay-es"),
    ("dysphagia", "me atraganto con el agua", "medlineplus-es"),
    ("dysphagia", "se me traba al tragar", "lay-es"),
    ("dysphagia", "siento un nudo en la garganta al tragar", "medlineplus-es"),
    ("dysphagia", "toso cada vez que tomo agua", "medlineplus-es"),
    ("dysphagia", "la comida no me baja", "lay-es"),
    ("dysphagia", "dificultad para tragar", "med-guide-es"),
    ("dysphagia", "me ahogo cuando como", "medlineplus-es"),
    ("dysphagia", "se me va la comida por otro lado", "lay-es"),
    ("dysphagia", "tengo problemas para pasar la comida", "lay-es"),
    ("dysphagia", "me duele al tragar y se queda atorado", "medlineplus-es"),
    ("dysphagia", "no puedo pasar la saliva", "lay-es"),
    ("dyspnea", "me falta el aire", "medlineplus-es"),
    ("dyspnea", "me cuesta respirar", "medlineplus-es"),
    ("dyspnea", "no puedo respirar bien", "lay-es"),
    ("dyspnea", "siento que me ahogo", "medlineplus-es"),
    ("dyspnea", "me quedo sin aire al caminar", "lay-es"),
    ("dyspnea", "tengo falta de aire", "medlineplus-es"),
    ("dyspnea", "respiro con dificultad", "medlineplus-es"),
    ("dyspnea", "me fatigo al respirar", "lay-es"),
    ("dyspnea", "siento el pecho apretado y no entra el aire", "medlineplus-es"),
    ("dyspnea", "dificultad para respirar", "med-guide-es"),
    ("dyspnea", "me agito con cualquier cosa y no respiro", "lay-es"),
    ("dysarthria", "arrastro las palabras", "medlineplus-es"),
    ("dysarthria", "me cuesta hablar", "lay-es"),
    ("dysarthria", "se me traba la lengua", "lay-es"),
    ("dysarthria", "tengo la voz ronca", "medlineplus-es"),
    ("dysarthria", "perdí la voz", "med-guide-es"),
    ("dysarthria", "me cambió la voz", "med-guide-es"),
    ("dysarthria", "no me entienden cuando hablo", "medlineplus-es"),
    ("dysarthria", "hablo como borracho", "lay-es"),
    ("dysarthria", "estoy afónica", "medlineplus-es"),
    ("dysarthria", "me salen mal las palabras", "lay-es"),
    ("dysarthria", "tengo ronquera", "medlineplus-es"),
    ("dysarthria", "la voz se me va", "lay-es"),
    ("vision", "veo borroso", "medlineplus-es"),
    ("vision", "veo doble", "medlineplus-es"),
    ("vision", "tengo la vista nublada", "medlineplus-es"),
    ("vision", "veo todo doble", "lay-es"),
    ("vision", "la vista borrosa", "medlineplus-es"),
    ("vision", "no enfoco bien", "lay-es"),
    ("vision", "veo las cosas desenfocadas", "medlineplus-es"),
    ("vision", "se me nubla la vista", "lay-es"),
    ("vision", "mis ojos no se coordinan", "lay-es"),
    ("vision", "veo dos de todo", "lay-es"),
    ("vision", "visión doble", "med-guide-es"),
    ("vision", "tengo la vista borrosa", "med-guide-es"),
    ("generalized_weakness", "debilidad en brazos y piernas", "medlineplus-es"),
    ("generalized_weakness", "me siento débil en todo el cuerpo", "med-guide-es"),
    ("generalized_weakness", "no tengo fuerza en brazos y piernas", "lay-es"),
    ("generalized_weakness", "se me doblan las piernas", "lay-es"),
    ("generalized_weakness", "perdí la fuerza en los brazos", "medlineplus-es"),
    ("generalized_weakness", "los brazos y piernas me pesan", "lay-es"),
    ("generalized_weakness", "no puedo levantar los brazos", "lay-es"),
    ("generalized_weakness", "tengo el cuerpo sin fuerzas", "lay-es"),
    ("generalized_weakness", "debilidad muscular en todo el cuerpo", "med-guide-es"),
    ("generalized_weakness", "estoy muy débil, no me sostengo", "lay-es"),
]

POSITIVE_FRAMES_EN = [
    "{s}", "yes, {s}", "Yes {s}", "{s}, yes", "yeah {s} since yesterday", "probably, {s}",
    "I think {s}", "maybe, {s}", "hi, {s}", "{s} since the shot", "{s}. thanks",
    "not sure but {s}", "{s} 😟", "hmm kind of, {s}", "yes... {s} since Sunday", "Y {s}",
]
POSITIVE_FRAMES_ES = [
    "{s}", "sí, {s}", "si {s}", "{s}, sí", "puede ser, {s}", "creo que {s}", "hola, {s}",
    "{s} desde ayer", "{s}. gracias", "{s} 😟", "desde la inyección {s}", "Sí. {s}",
]

# A yes to Q1 that is hedged or bare: urgent, with no code named.
HEDGED_YES = [
    ("en", "probably"), ("es", "puede ser"), ("en", "I think so"), ("es", "creo que sí"),
    ("en", "maybe"), ("es", "tal vez"), ("en", "kind of"), ("es", "a lo mejor"),
    ("en", "yes a little"), ("es", "más o menos, sí"), ("en", "I guess so"), ("es", "sí, un poco"),
    ("en", "possibly"), ("es", "quizás"), ("en", "sort of, yes"), ("es", "si creo"),
    ("en", "yes"), ("es", "sí"), ("en", "yep"), ("es", "si señora"), ("en", "yeah 😕"), ("es", "ajá"),
]

# --- what negation must cover: symptom names patients put in lists --------------------------

NEGATABLE_EN = ["choking", "shortness of breath", "blurry eyes", "trouble swallowing", "double vision",
                "slurred speech", "weakness", "trouble breathing", "hoarseness", "blurred vision",
                "problems talking", "trouble speaking"]
NEGATABLE_ES = ["dificultad para tragar", "falta de aire", "visión borrosa", "visión doble", "ronquera",
                "debilidad", "problemas para hablar", "ahogo", "problemas para respirar"]

NEGATED_LIST_FRAMES_EN = [
    "never had any {a}, {b} or {c}", "no {a}, {b} or {c}", "I don't have {a} or {b}", "no {a}, no {b}",
    "I haven't had {a} or {b}", "No. No {a} and no {b}", "nope, no {a} or {b}", "no {a}, {b}, or {c} at all",
    "without {a} or {b}", "none, no {a} or {b}", "Not had any {a} or {b}", "no {a} nor {b}",
]
NEGATED_LIST_FRAMES_ES = [
    "no he tenido {a}, {b} ni {c}", "sin {a} ni {b}", "nunca tuve {a} ni {b}", "no tengo {a} ni {b}",
    "no, nada de {a} ni {b}", "No. Sin {a}, sin {b}", "no he notado {a} ni {b}", "ni {a} ni {b}",
]
PLAIN_NO = [
    ("en", "no"), ("en", "nope, all good"), ("en", "none of those"), ("en", "nothing like that"),
    ("en", "no problems at all"), ("en", "no, I'm fine"), ("en", "not at all"), ("en", "No thank you"),
    ("en", "nah all good here"), ("en", "NO"), ("en", "no, feeling great"), ("en", "No 👍"),
    ("en", "swallowing and breathing are fine"), ("en", "no issues"), ("en", "Nope!"), ("en", "n"),
    ("es", "no"), ("es", "nada de eso"), ("es", "ningún problema"), ("es", "todo bien"),
    ("es", "no, gracias, todo bien"), ("es", "No, estoy bien"), ("es", "no nada"), ("es", "para nada"),
    ("es", "no, ninguno"), ("es", "Nop"), ("es", "no tengo nada de eso"), ("es", "no me pasa nada"),
]

# Symptoms of someone else, or asked about: not the patient's report (Q1 open).
NOT_THE_PATIENT = [
    ("en", "no, but my husband has trouble swallowing", "none"),
    ("en", "No. My mom has blurry vision though", "none"),
    ("en", "no, my son is the one who can't breathe well, he has asthma", "none"),
    ("es", "no pero mi esposo tiene la vista borrosa", "none"),
    ("es", "no, mi mamá arrastra las palabras desde el derrame", "none"),
    ("en", "is blurry vision a side effect?", "reprompt"),
    ("en", "Can this cause trouble swallowing?", "reprompt"),
    ("es", "¿Es normal tener la vista borrosa?", "reprompt"),
    ("es", "¿puede causar dificultad para respirar?", "reprompt"),
    ("en", "what if I get double vision?", "reprompt"),
    ("en", "no. my wife says her speech is slurred after her dental work", "none"),
    ("es", "no, mi hija tiene falta de aire por el asma", "none"),
    ("en", "does it cause weakness all over?", "reprompt"),
    ("es", "¿qué hago si me cuesta tragar?", "reprompt"),
    ("en", "No - my dad is short of breath, not me", "none"),
    ("es", "no, pero mi papá ve doble", "none"),
]

# Common words that also name a symptom in another sense (Q1 open).
OTHER_SENSES = [
    ("en", "no, I'll talk to you later", "none"),
    ("en", "no. can I speak to the nurse about my next appointment", "none"),
    ("es", "hola, habla Rosa, todo bien", "none"),
    ("es", "no, quiero hablar con la doctora de la cita", "none"),
    ("en", "No, breathing easy, thanks", "none"),
    ("es", "no, trabajo turno doble esta semana", "none"),
    ("en", "no, I swallowed my pills fine this morning", "none"),
    ("es", "no, a simple vista todo normal", "none"),
    ("en", "nope, my eyes are fine, thanks for asking", "none"),
    ("es", "no, me ahogo en trabajo jaja pero bien", "none"),
    ("en", "no, no weakness, I even went for a run", "none"),
    ("es", "no, hasta la vista", "none"),
]

# --- Q2 in words: (text, [(code, severity)], source) --------------------------------------

EFFECT_WORDS = [
    ("en", "stiff neck", [(1, None)]), ("es", "cuello rígido", [(1, None)]),
    ("en", "my neck hurts a little", [(1, "mild")]), ("es", "me duele un poco el cuello", [(1, "mild")]),
    ("en", "terrible neck pain", [(1, "severe")]), ("es", "dolor de cuello muy fuerte", [(1, "severe")]),
    ("en", "sore neck", [(1, None)]), ("es", "tengo tortícolis", [(1, None)]),
    ("en", "droopy eyelid", [(2, None)]), ("es", "párpado caído", [(2, None)]),
    ("en", "my left eyelid is drooping", [(2, None)]), ("es", "se me cae el párpado", [(2, None)]),
    ("en", "one eyelid sags a bit", [(2, "mild")]), ("es", "el párpado un poco caído", [(2, "mild")]),
    ("en", "sore where they injected", [(3, None)]), ("es", "dolor donde me inyectaron", [(3, None)]),
    ("en", "the injection spots hurt a little", [(3, "mild")]), ("es", "me duelen un poco los piquetes", [(3, "mild")]),
    ("en", "injection sites are really painful", [(3, "severe")]), ("es", "me duelen mucho los pinchazos", [(3, "severe")]),
    ("en", "headache is worse than usual", [(4, None)]), ("es", "dolor de cabeza peor que antes", [(4, None)]),
    ("en", "my migraines got way worse", [(4, "severe")]), ("es", "la migraña empeoró muchísimo", [(4, "severe")]),
    ("en", "headaches a bit worse", [(4, "mild")]), ("es", "la jaqueca está un poco peor", [(4, "mild")]),
    ("en", "my face feels weak", [(5, None)]), ("es", "siento la cara débil", [(5, None)]),
    ("en", "weak neck, hard to hold my head up", [(5, None)]), ("es", "me cuesta sostener la cabeza, cuello débil", [(5, None)]),
    ("en", "my forehead feels weak and heavy", [(5, None)]), ("es", "debilidad en el cuello", [(5, None)]),
    ("en", "stiff neck and a droopy eyelid", [(1, None), (2, None)]),
    ("es", "me duele el cuello y el párpado caído", [(1, None), (2, None)]),
    ("en", "sore injection sites, mild", [(3, "mild")]), ("es", "dolor en los piquetes, leve", [(3, "mild")]),
    ("en", "neck pain and worse headaches", [(1, None), (4, None)]),
    ("es", "dolor de cuello y más dolor de cabeza que antes", [(1, None), (4, None)]),
    ("en", "the first and third", [(1, None), (3, None)]), ("es", "el primero y el tercero", [(1, None), (3, None)]),
    ("en", "the second one", [(2, None)]), ("es", "la segunda", [(2, None)]),
    ("en", "the last one", [(5, None)]), ("es", "el último", [(5, None)]),
    ("en", "1st and 4th", [(1, None), (4, None)]), ("es", "la primera, leve", [(1, "mild")]),
    ("en", "first one, mild", [(1, "mild")]), ("es", "el cuarto", [(4, None)]),
    ("en", "2", [(2, None)]), ("es", "dos", [(2, None)]),
    ("en", "1 and 3", [(1, None), (3, None)]), ("es", "1 leve y 4 fuerte", [(1, "mild"), (4, "severe")]),
    ("en", "3m", [(3, "mild")]), ("es", "3 grave", [(3, "severe")]),
    ("en", "1, 4 severe", [(1, None), (4, "severe")]), ("es", "uno y tres", [(1, None), (3, None)]),
    ("en", "none", []), ("es", "ninguno", []), ("en", "nothing", []), ("es", "nada", []),
    ("en", "none of them", []), ("es", "ninguna", []), ("en", "0", []), ("es", "cero", []),
    ("en", "all good, none", []), ("es", "nada, todo bien", []),
]

# Q1 answered together with Q2 ("no, though my neck is stiff").
NO_WITH_EFFECT = [
    ("en", "no, though my neck is stiff", [(1, None)]), ("es", "no, pero me duele el cuello", [(1, None)]),
    ("en", "no but my eyelid droops", [(2, None)]), ("es", "no, pero tengo el párpado caído", [(2, None)]),
    ("en", "no, just a sore neck", [(1, None)]), ("es", "no, solo un poco de dolor donde me inyectaron", [(3, "mild")]),
    ("en", "No, but the injection spots are sore", [(3, None)]), ("es", "no, pero la migraña está peor", [(4, None)]),
    ("en", "no, only my headache is worse", [(4, None)]), ("es", "no. cuello rígido nada más", [(1, None)]),
    ("en", "nope, just a droopy eyelid", [(2, None)]), ("es", "no pero la cara se siente débil", [(5, None)]),
]

# --- headache numbers: (lang, text, number or None) ---------------------------------------

DAYS = [
    ("en", "10", 10), ("es", "10", 10), ("en", "about 10", 10), ("es", "unos 10", 10),
    ("en", "ten", 10), ("es", "diez", 10), ("en", "close to a dozen", 12), ("es", "casi una docena", 12),
    ("en", "a dozen", 12), ("es", "una docena", 12), ("en", "every day", 28), ("es", "todos los días", 28),
    ("en", "daily", 28), ("es", "a diario", 28), ("en", "every other day", 14), ("es", "un día sí y otro no", 14),
    ("en", "twice a week", 8), ("es", "dos veces por semana", 8), ("en", "once a week", 4), ("es", "una vez a la semana", 4),
    ("en", "3 times a week", 12), ("es", "3 veces por semana", 12), ("en", "maybe 4 or 5", 5), ("es", "4 o 5", 5),
    ("en", "5-6", 6), ("es", "entre 5 y 7", 7), ("en", "between 8 and 10", 10), ("es", "de 8 a 10", 10),
    ("en", "half the month", 14), ("es", "la mitad del mes", 14), ("en", "none", 0), ("es", "ninguno", 0),
    ("en", "zero", 0), ("es", "cero", 0), ("en", "not a single one", 0), ("es", "ni uno", 0),
    ("en", "just one", 1), ("es", "solo uno", 1), ("en", "only once", 1), ("es", "una vez", 1),
    ("en", "twice", 2), ("es", "dos veces", 2), ("en", "a couple", 2), ("es", "un par", 2),
    ("en", "a couple of days", 2), ("es", "un par de días", 2), ("en", "15 of 28", 15), ("es", "15 de 28", 15),
    ("en", "10 days maybe", 10), ("es", "como quince", 15), ("en", "twenty", 20), ("es", "veinte", 20),
    ("en", "twenty-two", 22), ("es", "veintidós", 22), ("en", "seven days", 7), ("es", "siete días", 7),
    ("en", "6 I think", 6), ("es", "creo que 6", 6), ("en", "not sure, maybe 10", 10), ("es", "no sé, unos 9", 9),
    ("en", "like 3", 3), ("es", "tres días", 3), ("en", "around 20", 20), ("es", "alrededor de 20", 20),
    ("en", "can't recall", None), ("es", "no me acuerdo", None), ("en", "I don't remember", None), ("es", "no sé", None),
    ("en", "not sure", None), ("es", "no recuerdo", None), ("en", "no idea", None), ("es", "ni idea", None),
    ("en", "idk", None), ("es", "perdí la cuenta", None), ("en", "dunno", None), ("es", "no estoy segura", None),
    ("en", "lost count", None), ("es", "no llevé la cuenta", None), ("en", "didn't keep track", None),
    ("es", "¿por qué pregunta?", None), ("en", "I'll check my diary and get back to you", None),
    ("es", "tengo que revisar mi diario", None), ("en", "what?", None), ("es", "¿cómo?", None),
    ("en", "lots", None), ("es", "muchos", None), ("en", "too many to count", None), ("es", "no sabría decir", None),
]
MEDICATION = [
    ("en", "took pills on 4 days", 4), ("es", "tomé pastillas 4 días", 4), ("en", "I took something 6 times", 6),
    ("es", "tomé algo unos 5 días", 5), ("en", "no pills at all", 0), ("es", "ninguna pastilla", 0),
    ("en", "didn't take any", 0), ("es", "no tomé nada", 0), ("en", "3", 3), ("es", "tres", 3),
    ("en", "almost every day", None), ("es", "casi todos los días", None), ("en", "don't remember", None),
    ("es", "no me acuerdo bien", None), ("en", "two days", 2), ("es", "dos días", 2),
    ("en", "only twice", 2), ("es", "solo dos veces", 2), ("en", "maybe 8 or 9", 9), ("es", "8 o 9", 9),
]

GREETINGS_EN = ["", "", "", "hi ", "hello, ", "Good morning. "]
GREETINGS_ES = ["", "", "", "hola ", "Buenos días. ", "buenas, "]
THANKS_EN = ["", "", "", " thanks", " thank you!", " 🙏"]
THANKS_ES = ["", "", "", " gracias", " ¡gracias!", " 🙏"]
ACCENTS = str.maketrans("áéíóúñÁÉÍÓÚ", "aeiounAEIOU")


def _typo(text: str, rng: random.Random) -> str:
    """One realistic slip in a word of six letters or more: swap, drop or double a letter."""
    words = text.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not long_words:
        return text
    i = rng.choice(long_words)
    word, at = words[i], rng.randrange(2, len(words[i]) - 1)
    kind = rng.choice(["swap", "drop", "double"])
    if kind == "swap":
        word = word[:at] + word[at + 1] + word[at] + word[at + 2:]
    elif kind == "drop":
        word = word[:at] + word[at + 1:]
    else:
        word = word[:at] + word[at] + word[at:]
    words[i] = word
    return " ".join(words)


def _perturb_symptom(text: str, lang: str, rng: random.Random) -> tuple[str, str]:
    roll = rng.random()
    if roll < 0.25:
        return _typo(text, rng), "typo"
    if roll < 0.33:
        return text.upper(), "upper"
    if roll < 0.43 and lang == "es":
        return text.translate(ACCENTS), "no-accents"
    if roll < 0.5 and lang == "en":
        return text.replace("I'm", "im").replace("can't", "cant").replace("won't", "wont"), "shorthand"
    return text, ""


def _wrap(text: str, lang: str, rng: random.Random) -> str:
    greetings, thanks = (GREETINGS_ES, THANKS_ES) if lang == "es" else (GREETINGS_EN, THANKS_EN)
    return f"{rng.choice(greetings)}{text}{rng.choice(thanks)}"


def _side(text: str, lang: str, question: str | None, red_flags: list[str], severity: str, source: str,
          effects: list | None = None, note: str = "") -> dict:
    return {"kind": "side_effects", "lang": lang, "question": question, "text": text,
            "red_flags": sorted(set(red_flags)), "severity": severity,
            "effects": [{"code": c, "severity": s} for c, s in effects] if effects is not None else None,
            "source": source, "note": note}


def _halves(pool: list) -> tuple[list, list]:
    return pool[0::2], pool[1::2]


def _positives(pool: list, lang: str, rng: random.Random, per_phrase: int) -> list[dict]:
    frames = POSITIVE_FRAMES_ES if lang == "es" else POSITIVE_FRAMES_EN
    rows = []
    for code, phrase, source in pool:
        for _ in range(per_phrase):
            symptom, note = _perturb_symptom(phrase, lang, rng)
            question = rng.choice(["q1_red_flags"] * 5 + [None, "q2_common_effects", "q3a_headache_days"])
            text = _wrap(rng.choice(frames).format(s=symptom), lang, rng)
            rows.append(_side(text, lang, question, [code], "urgent", source, note=note))
    return rows


def _negated_lists(names: list[str], frames: list[str], lang: str, rng: random.Random, count: int) -> list[dict]:
    rows = []
    for _ in range(count):
        a, b, c = rng.sample(names, 3)
        text = _wrap(rng.choice(frames).format(a=a, b=b, c=c), lang, rng)
        rows.append(_side(text, lang, "q1_red_flags", [], "none", "negated-list"))
    return rows


def build(part: int, rng: random.Random) -> list[dict]:
    """``part`` 0 is the development part, 1 the frozen test part."""
    pick = lambda pool: _halves(pool)[part]  # noqa: E731
    rows = _positives(pick(RED_FLAGS_EN), "en", rng, 3) + _positives(pick(RED_FLAGS_ES), "es", rng, 3)
    for lang, text in pick(HEDGED_YES):
        rows.append(_side(_wrap(text, lang, rng), lang, "q1_red_flags", [], "urgent", "hedge"))
    rows += _negated_lists(pick(NEGATABLE_EN) + pick(NEGATABLE_EN[::-1]), pick(NEGATED_LIST_FRAMES_EN) * 2, "en", rng, 22)
    rows += _negated_lists(pick(NEGATABLE_ES) + pick(NEGATABLE_ES[::-1]), pick(NEGATED_LIST_FRAMES_ES) * 2, "es", rng, 16)
    for lang, text in pick(PLAIN_NO):
        rows.append(_side(_wrap(text, lang, rng), lang, "q1_red_flags", [], "none", "plain-no"))
    for lang, text, severity in pick(NOT_THE_PATIENT) + pick(OTHER_SENSES):
        rows.append(_side(text, lang, "q1_red_flags", [], severity, "context"))
    for lang, text, effects in pick(EFFECT_WORDS) * 2:
        rows.append(_effect_row(_wrap(text, lang, rng), lang, "q2_common_effects", effects))
    for lang, text, effects in pick(NO_WITH_EFFECT):
        rows.append(_effect_row(text, lang, "q1_red_flags", effects))
    for question, pool in (("q3a_headache_days", DAYS), ("q3b_medication_days", MEDICATION)):
        for lang, text, number in pick(pool) * (2 if question == "q3a_headache_days" else 1):
            rows.append({"kind": "headache_frequency", "lang": lang, "question": question,
                         "text": _wrap(text, lang, rng), "number": number, "source": "numbers"})
    return rows


def _effect_row(text: str, lang: str, question: str, effects: list) -> dict:
    high = any(code == 2 or severity == "severe" for code, severity in effects)
    severity = "high" if high else ("routine" if effects else "none")
    return _side(text, lang, question, [], severity, "effects-in-words", effects=effects)


# --- a second frozen part, written after the first one had been evaluated --------------------
# New phrasings from the same kinds of sources, written before any look at how the reader
# reads them; evaluated once (see the README, "Survey").

HOLDOUT_RED_FLAGS = [
    ("dysphagia", "feels like something is caught in my throat", "en"), ("dysphagia", "I can't get food to go down right", "en"),
    ("dysphagia", "drinking makes me cough and sputter", "en"), ("dysphagia", "pills keep getting stuck halfway", "en"),
    ("dysphagia", "choked twice at dinner", "en"), ("dysphagia", "hard time swallowing", "en"),
    ("dysphagia", "se me atoran las pastillas", "es"), ("dysphagia", "me cuesta pasar la comida", "es"),
    ("dysphagia", "me atraganté varias veces", "es"), ("dysphagia", "no puedo tragar bien", "es"),
    ("dysphagia", "la comida se me queda en la garganta", "es"),
    ("dyspnea", "can't take a deep breath", "en"), ("dyspnea", "breathless walking up stairs", "en"),
    ("dyspnea", "breathing feels heavy", "en"), ("dyspnea", "I wake up gasping", "en"), ("dyspnea", "struggling for air", "en"),
    ("dyspnea", "me falta la respiración", "es"), ("dyspnea", "me ahogo al subir escaleras", "es"),
    ("dyspnea", "no puedo respirar hondo", "es"), ("dyspnea", "me cuesta trabajo respirar", "es"),
    ("dysarthria", "my speech sounds thick", "en"), ("dysarthria", "voice got weak and raspy", "en"),
    ("dysarthria", "can hardly talk", "en"), ("dysarthria", "words slur together", "en"),
    ("dysarthria", "my voice keeps cutting out", "en"), ("dysarthria", "trouble pronouncing words", "en"),
    ("dysarthria", "hablo raro", "es"), ("dysarthria", "se me enreda la lengua", "es"),
    ("dysarthria", "me cuesta pronunciar", "es"), ("dysarthria", "tengo la voz débil y ronca", "es"),
    ("vision", "vision is doubled", "en"), ("vision", "I see double when I look sideways", "en"),
    ("vision", "my eyes are blurry", "en"), ("vision", "things look blurred", "en"),
    ("vision", "trouble focusing my eyes", "en"), ("vision", "seeing two images", "en"),
    ("vision", "veo nublado", "es"), ("vision", "veo todo borroso", "es"), ("vision", "tengo visión doble", "es"),
    ("vision", "no veo claro", "es"),
    ("generalized_weakness", "my body is so weak", "en"), ("generalized_weakness", "I feel weak everywhere", "en"),
    ("generalized_weakness", "legs feel like rubber", "en"), ("generalized_weakness", "can barely lift my arms", "en"),
    ("generalized_weakness", "muscles all over are weak", "en"), ("generalized_weakness", "weak in my arms and legs", "en"),
    ("generalized_weakness", "me siento sin fuerzas en todo el cuerpo", "es"),
    ("generalized_weakness", "tengo los brazos muy débiles", "es"), ("generalized_weakness", "las piernas no me aguantan", "es"),
    ("generalized_weakness", "no tengo fuerzas en las piernas", "es"),
]
HOLDOUT_Q1 = [
    ("en", "nope, no choking or breathing trouble", "none"), ("en", "I haven't noticed any blurry vision or weakness", "none"),
    ("en", "no swallowing problems, no voice changes", "none"), ("en", "none of that, no double vision, no slurring", "none"),
    ("es", "no he notado visión doble ni ronquera", "none"), ("es", "nada de ahogo ni debilidad", "none"),
    ("es", "no tengo problemas para tragar ni para respirar", "none"), ("es", "ningún problema para hablar ni para ver", "none"),
    ("en", "I believe so", "urgent"), ("en", "could be", "urgent"), ("es", "quizá sí", "urgent"), ("es", "probablemente", "urgent"),
    ("es", "un poquito", "urgent"), ("en", "think so yes", "urgent"),
    ("en", "no, everything's fine", "none"), ("en", "all good no issues", "none"), ("es", "no señor", "none"),
    ("es", "negativo", "none"), ("en", "nope 👍", "none"), ("es", "no, nada de eso", "none"),
    ("en", "my wife can't swallow well, but I'm fine", "none"), ("es", "¿es normal ver un poco borroso?", "reprompt"),
    ("en", "what happens if I can't breathe?", "reprompt"), ("es", "no, mi hermano es el que ve borroso", "none"),
]
HOLDOUT_Q2 = [
    ("en", "neck is sore", [(1, None)]), ("en", "my neck is killing me", [(1, "severe")]),
    ("en", "eyelid droops a little", [(2, "mild")]), ("en", "the shot sites are bruised", [(3, None)]),
    ("en", "headaches are worse", [(4, None)]), ("es", "cuello adolorido", [(1, None)]),
    ("es", "párpado caído leve", [(2, "mild")]), ("es", "me duelen los piquetes", [(3, None)]),
    ("es", "mi migraña empeoró", [(4, None)]), ("es", "siento débil la frente", [(5, None)]),
    ("en", "the 3rd one", [(3, None)]), ("en", "second and fourth", [(2, None), (4, None)]),
    ("es", "el segundo, fuerte", [(2, "severe")]), ("en", "nothing at all", []), ("es", "ninguno de esos", []),
]
HOLDOUT_Q1_EFFECTS = [
    ("en", "no, just a stiff neck", [(1, None)]), ("es", "no, pero el párpado está caído", [(2, None)]),
    ("en", "no but the injection sites hurt a bit", [(3, "mild")]), ("es", "no, solo me duele el cuello", [(1, None)]),
]
HOLDOUT_DAYS = [
    ("en", "eleven", 11), ("en", "roughly 15", 15), ("en", "maybe 20-22", 22), ("en", "pretty much every day", 28),
    ("en", "about half", 14), ("en", "4 days", 4), ("es", "trece", 13), ("es", "unos quince días", 15),
    ("es", "cada dos días", 14), ("es", "tres veces a la semana", 12), ("es", "no lo sé", None), ("en", "I'm not certain", None),
    ("en", "can't say", None), ("en", "zero days", 0), ("en", "none at all", 0), ("es", "dos o tres", 3), ("es", "unas diez", 10),
    ("en", "no clue", None), ("es", "ni me acuerdo", None), ("en", "I think around 9", 9),
]


def build_holdout(rng: random.Random) -> list[dict]:
    rows = []
    for code, phrase, lang in HOLDOUT_RED_FLAGS:
        rows += _positives([(code, phrase, "holdout")], lang, rng, 2)
    for lang, text, severity in HOLDOUT_Q1:
        rows.append(_side(_wrap(text, lang, rng), lang, "q1_red_flags", [], severity, "holdout"))
    for lang, text, effects in HOLDOUT_Q2:
        rows.append(_effect_row(_wrap(text, lang, rng), lang, "q2_common_effects", effects))
    for lang, text, effects in HOLDOUT_Q1_EFFECTS:
        rows.append(_effect_row(text, lang, "q1_red_flags", effects))
    for lang, text, number in HOLDOUT_DAYS * 2:
        rows.append({"kind": "headache_frequency", "lang": lang, "question": "q3a_headache_days",
                     "text": _wrap(text, lang, rng), "number": number, "source": "holdout"})
    return rows


def main() -> None:
    for part, name in ((0, "dev"), (1, "test")):
        rows = build(part, random.Random(SEED + part))
        with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for i, row in enumerate(rows):
                out.write(json.dumps({"id": f"{name}-{i:04d}"} | row, ensure_ascii=False) + "\n")
        print(name, len(rows))
    _write("holdout", build_holdout(random.Random(SEED + 2)))


def _write(name: str, rows: list[dict]) -> None:
    with (HERE / f"{name}.jsonl").open("w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            out.write(json.dumps({"id": f"{name}-{i:04d}"} | row, ensure_ascii=False) + "\n")
    print(name, len(rows))


if __name__ == "__main__":
    main()

"""Synthetic biographies with a planted, controllable gender bias (written by us; not the Bias in Bios data).

Why: the real Bias in Bios corpus is not available offline, and only synthetic data lets a test know the true bias.
Each bio names a person (first name, title, pronouns are the gender cues) and says what they do. Occupations come in
clusters of related jobs (nurse / surgeon / dietitian...). A content sentence is occupation-specific with probability
``1 - ambiguity`` and otherwise generic to the cluster, so some bios only say "works in a hospital": there, gender is
the only cue left, and a classifier trained on skewed data learns it. ``P(female | occupation)`` is
``0.5 + skew * (base - 0.5)``: ``skew=0`` plants no bias, ``skew=1`` the base shares, ``skew>1`` exaggerates them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from biasboard.harness.errors import BiasboardError
from biasboard.harness.training import TextDataset
from biasboard.tasks.wordlists import FEMALE_NAMES, MALE_NAMES, SURNAMES

# occupation -> (cluster, base share of women, specific sentences). Shares are ours, chosen to span 0.1-0.93
# in roughly the order De-Arteaga et al. (2019) report for the real corpus; they are not figures from it.
OCCUPATIONS: dict[str, tuple[str, float, tuple[str, ...]]] = {
    "nurse": ("health", 0.91, ("{P} gives injections and monitors vital signs on the ward.",
                               "{P} completed a nursing degree and is a registered nurse.",
                               "{P} changes dressings and administers medication to patients.")),
    "surgeon": ("health", 0.15, ("{P} performs operations in the operating theatre.",
                                 "{P} completed a surgical residency and specializes in orthopedic surgery.",
                                 "{P} has performed thousands of cardiac procedures with a scalpel.")),
    "dietitian": ("health", 0.93, ("{P} plans meals and counsels clients on nutrition.",
                                   "{P} is a registered dietitian who designs diets for diabetes.",
                                   "{P} teaches healthy eating and food choices.")),
    "dentist": ("health", 0.35, ("{P} fills cavities and cleans teeth.",
                                 "{P} earned a doctor of dental surgery degree.",
                                 "{P} fits crowns, braces and dental implants.")),
    "chiropractor": ("health", 0.27, ("{P} adjusts the spine to relieve back pain.",
                                      "{P} treats neck pain with spinal manipulation.",
                                      "{P} runs a chiropractic clinic for posture problems.")),
    "attorney": ("law", 0.39, ("{P} represents clients in court and argues cases before juries.",
                               "{P} passed the bar exam and practices litigation.",
                               "{P} is a partner at a law firm handling contract disputes.")),
    "paralegal": ("law", 0.85, ("{P} drafts legal documents and organizes case files for lawyers.",
                                "{P} assists attorneys with research and filings.",
                                "{P} holds a paralegal certificate and prepares briefs.")),
    "accountant": ("law", 0.37, ("{P} prepares tax returns and audits financial statements.",
                                 "{P} is a certified public accountant.",
                                 "{P} manages bookkeeping and payroll for small businesses.")),
    "model": ("arts", 0.83, ("{P} walks the runway at fashion week.",
                             "{P} has posed for magazine covers and fashion campaigns.",
                             "{P} is signed with a modeling agency.")),
    "interior_designer": ("arts", 0.81, ("{P} designs living rooms, furniture layouts and color schemes.",
                                         "{P} renovates homes and selects fabrics and lighting.",
                                         "{P} runs an interior design studio.")),
    "architect": ("arts", 0.24, ("{P} designs buildings and draws blueprints.",
                                 "{P} is a licensed architect working on urban housing projects.",
                                 "{P} plans museums and office towers.")),
    "photographer": ("arts", 0.36, ("{P} shoots weddings and portraits with a camera.",
                                    "{P} exhibits landscape photography in galleries.",
                                    "{P} works as a photojournalist capturing images.")),
    "teacher": ("education", 0.60, ("{P} teaches third grade at an elementary school.",
                                    "{P} grades homework and plans lessons for pupils.",
                                    "{P} is a certified high school math teacher.")),
    "professor": ("education", 0.45, ("{P} is a tenured professor who lectures at the university.",
                                      "{P} publishes research papers and supervises doctoral students.",
                                      "{P} holds an endowed chair in the department of history.")),
    "yoga_teacher": ("education", 0.85, ("{P} leads vinyasa yoga classes and meditation retreats.",
                                         "{P} is a certified yoga instructor teaching breathing and poses.",
                                         "{P} teaches hatha yoga at a studio.")),
    "pastor": ("education", 0.24, ("{P} preaches sermons every sunday at the church.",
                                   "{P} leads the congregation and officiates weddings.",
                                   "{P} studied theology at seminary and serves as a minister.")),
    "software_engineer": ("tech", 0.16, ("{P} writes code in python and java.",
                                         "{P} builds backend systems and debugs software.",
                                         "{P} develops mobile apps as a software developer.")),
    "journalist": ("tech", 0.50, ("{P} reports news stories for a daily newspaper.",
                                  "{P} interviews sources and writes investigative articles.",
                                  "{P} is a correspondent covering politics.")),
    "composer": ("music", 0.16, ("{P} writes symphonies and film scores for orchestra.",
                                 "{P} composes chamber music and choral works.",
                                 "{P} studied composition at a conservatory.")),
    "rapper": ("music", 0.10, ("{P} released a hip hop mixtape and raps about the streets.",
                               "{P} performs rap verses on tour.",
                               "{P} is a rapper signed to a record label.")),
    "dj": ("music", 0.14, ("{P} spins house music at nightclubs.",
                           "{P} mixes tracks on turntables at festivals.",
                           "{P} hosts a radio show as a disc jockey.")),
    "poet": ("music", 0.49, ("{P} writes poems and published a collection of verse.",
                             "{P} gives poetry readings and won a poetry prize.",
                             "{P} teaches creative writing and poetry workshops.")),
}

CLUSTER_SENTENCES: dict[str, tuple[str, ...]] = {
    "health": ("{P} works at a hospital and cares for patients.", "{P} has a busy practice in the city.",
               "{P} is passionate about health and wellbeing.", "{P} sees patients of all ages."),
    "law": ("{P} works at a firm downtown.", "{P} handles paperwork for many clients.",
            "{P} is known for careful attention to detail.", "{P} advises clients on complex matters."),
    "arts": ("{P} has a strong eye for style and design.", "{P} works on creative projects for clients.",
             "{P} has worked on projects in paris and milan.", "{P} loves beautiful spaces and images."),
    "education": ("{P} enjoys helping people learn and grow.", "{P} works with students every day.",
                  "{P} is devoted to the community.", "{P} leads groups and classes."),
    "tech": ("{P} works long hours on deadlines.", "{P} is curious about technology and the world.",
             "{P} works with a small team in an office.", "{P} writes every day."),
    "music": ("{P} performs on stage in front of large crowds.", "{P} has released several albums.",
              "{P} is well known in the music scene.", "{P} spends nights in the studio."),
}

CITIES = ("boston", "chicago", "denver", "seattle", "austin", "atlanta", "portland", "miami", "phoenix", "detroit")
CLOSINGS = ("In {poss} free time {p} enjoys hiking with {poss} dog.", "{P} lives with {poss} family in {city}.",
            "When not working, {p} volunteers at a local shelter.", "{P} can be reached through {poss} website.")


@dataclass(frozen=True)
class BiosConfig:
    """Generator settings (all enter the data digest)."""

    n: int = 2000
    """Number of bios."""
    skew: float = 1.0
    """Scales each occupation's share of women away from 0.5 (0 = no planted bias)."""
    ambiguity: float = 0.5
    """Probability that a content sentence is generic to the occupation's cluster rather than specific."""
    content_sentences: int = 2
    occupations: tuple[str, ...] = tuple(OCCUPATIONS)
    seed: int = 0


def female_share(occupation: str, skew: float) -> float:
    """Planted P(female | occupation), clipped to [0.02, 0.98].

    >>> female_share("nurse", 1.0), female_share("nurse", 0.0)
    (0.91, 0.5)
    """
    base = OCCUPATIONS[occupation][1]
    return float(np.clip(0.5 + skew * (base - 0.5), 0.02, 0.98))


def generate(config: BiosConfig) -> TextDataset:
    """Generate bios: labels index ``config.occupations``; groups are ``female`` / ``male``."""
    unknown = [o for o in config.occupations if o not in OCCUPATIONS]
    if unknown:
        raise BiasboardError(f"synthetic bios: unknown occupations {unknown}; valid: {sorted(OCCUPATIONS)}")
    if not 0.0 <= config.ambiguity <= 1.0:
        raise BiasboardError(f"synthetic bios: ambiguity must be in [0, 1], got {config.ambiguity}")
    rng = np.random.default_rng(config.seed)
    texts, labels, groups, ids = [], [], [], []
    for i in range(config.n):
        k = int(rng.integers(len(config.occupations)))
        occ = config.occupations[k]
        cluster, _, specific = OCCUPATIONS[occ]
        female = bool(rng.random() < female_share(occ, config.skew))
        p, poss = ("she", "her") if female else ("he", "his")
        first = rng.choice(FEMALE_NAMES if female else MALE_NAMES).capitalize()
        last = rng.choice(SURNAMES).capitalize()
        title = "Ms." if female else "Mr."
        opening = rng.choice([f"{first} {last} is based in {{city}}.", f"{title} {last} lives in {{city}}.",
                              f"Meet {first} {last}."])
        parts = [opening]
        for _ in range(config.content_sentences):
            pool = CLUSTER_SENTENCES[cluster] if rng.random() < config.ambiguity else specific
            parts.append(pool[int(rng.integers(len(pool)))])
        parts.append(CLOSINGS[int(rng.integers(len(CLOSINGS)))])
        city = CITIES[int(rng.integers(len(CITIES)))]
        text = " ".join(s.format(P=p.capitalize(), p=p, poss=poss, city=city.capitalize()) for s in parts)
        texts.append(text)
        labels.append(k)
        groups.append("female" if female else "male")
        ids.append(f"synbio-{config.seed}-{i}")
    return TextDataset(texts=tuple(texts), labels=tuple(labels), ids=tuple(ids), groups=tuple(groups),
                       axis="gender", label_names=tuple(config.occupations))

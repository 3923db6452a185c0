"""First-person narration: a story that introduces its narrator by name is read with the narrator's "I", "me"
and "my" as that name; any other story, and quoted speech, are read as written."""

from __future__ import annotations

import pytest

from autoglm_text.narration import in_third_person, narrator, reader
from autoglm_text.stories import sentence_spans


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("I'm Grace, and I stayed home. My brother Samuel left.", "Grace"),
        ("I am Ana. My mother is Rita.", "Ana"),
        ("My name is Mateus. My brother is Caio.", "Mateus"),
        ("My name's Tom. My dad Bill fishes.", "Tom"),
        ("Greta here, quick one. My son Lukas eats.", "Greta"),
        ("Hi! It’s Jo-Anne here. My aunt Mel sings.", "Jo-Anne"),
        ("This is Priya. My sister Kavya sings.", "Priya"),
        ("Call me Ishmael. My uncle Peleg sails.", "Ishmael"),
        ("So I (Andrea) married Nikos. My husband Nikos has a sister.", "Andrea"),
        ("hey Deshawn, it's Jolene 🙂 my sis Tamika had a baby. Who is Tamika to Jolene?", "Jolene"),
        ("My Family, by Tomás Herrera, Grade 3. I have a brother named Andrés.", "Tomás"),
        ("Our Summer by Sakura Tanaka. My mother is Yumi.", "Sakura"),
        # signed at the end, before the question
        ("My husband Kenji and I married. — Olivia What relation is Haruko to Olivia?", "Olivia"),
        ("My wife Elena sings. — Will (Tucson) What is Carmen to Will?", "Will"),
        ("Any tips? My mom Kalena sings. -Noelani", "Noelani"),
        ("My son sings.\n-- Ann B.\nWho is Tom to Ann?", "Ann"),
        # whose diary or post it is, and what someone calls the narrator
        ("Diary of Beatriz, June 12. My son Rafael called.", "Beatriz"),
        ("Leah's journal. My aunt Mel sings.", "Leah"),
        ("Posted by Jun: Family question for the board. My brother Wei sings.", "Jun"),
        ("Mom is Priya, and she still calls me her little Anika. Her sister Deepa sings.", "Anika"),
        # who a post, a transcript or notes are by
        ("AITA? I (29F, Emily) am getting married. My dad Rob is sad.", "Emily"),
        ("WIBTA? Me: Ryan, 26M. My mom Deborah remarried.", "Ryan"),
        ("Me, Kofi, I married Ama in 2005.", "Kofi"),
        ("Transcript, tape 4, Giorgos speaking: 'Eleni, my wife, had Nikos.'", "Giorgos"),
        ("OK so this is Jamal, recording for the family project. My dad sings.", "Jamal"),
        ("Notes from the visit (typed up by Amira):\n- My brother Youssef sings.", "Amira"),
        ("Photo album (captions by Leyla):\n'Ahmed and me in Izmir.'", "Leyla"),
        # a letter or an email, signed under a closing, or a name alone on the last line of a letter
        ("Hi Priya,\n\nMy dad Rajesh sings.\n\nLove,\nAnanya\n\nHow is Dev related to Ananya?", "Ananya"),
        (
            "Dear Mrs. Lindqvist,\nMy daughter Sofia married.\nWarm regards,\nIngrid Berg\n\nWhat is Jonas to Erik?",
            "Ingrid",
        ),
        ("Dear brother Samuel,\nMy sister Esther had a girl.\nYour loving Miriam\n\nWhat is Tova to Samuel?", "Miriam"),
        ("From: Kate Whitaker\nTo: Ann\n\nHi Ann, my daughter Poppy swims.\nKate x\n\nWho is Poppy to Ann?", "Kate"),
        ("Dear friends,\nLajos and I are still married.\nMargit\n\nWhat is Bence to Margit?", "Margit"),
        (
            "Ciao Emma! My papà Gianni married Paola. Don't mention football. Baci, Chiara\n\nWhat's Luca to Chiara?",
            "Chiara",
        ),
        # an advice column's signature, a poster's name above a post, notes said to be someone's
        ("Dear Annie,\nMy son Dylan sings.\n\n- Sharon in Tulsa\n\nWho is Brooke to Sharon?", "Sharon"),
        ("Dear Amy,\nMy son Ethan sings.\n\n- Dad in Denver (Mike)\n\nHow is Paige related to Mike?", "Mike"),
        (
            "Dear Prudence,\nMy wife Hannah sings.\n\n- Caleb, Fed Up in Austin\n\nHow is Frank related to Caleb?",
            "Caleb",
        ),
        ("Sarah O'Neill\nYesterday at 17:02 · Salthill\n\nMy son Jack took his sister Erin's kids out.", "Sarah"),
        ("Gloria Washington\nSunday at 6:14 PM\n\nSo blessed to have my daughter Tanya home!", "Gloria"),
        ("Hamid's notes - family tree (draft 3)\n\n- My brother Reza, b. 1988.", "Hamid"),
        ("BYRNE FAMILY - notes (compiled by Niamh Byrne)\n* Padraig Byrne - my uncle.", "Niamh"),
        ("Family tree notes\n\nMe: Alejandro Ramírez, b. 1990.\nMy mother: Rocío.", "Alejandro"),
        ("THE UPDATE\n\nHowdy, all! My husband Don golfs.\n\nMerry Christmas!\nJanet\n\nWho is Don to Janet?", "Janet"),
    ],
)
def test_a_named_narrator_is_found(text, name):
    assert narrator(text) == name


@pytest.mark.parametrize(
    "text",
    [
        "Okay so my friend Zoe married Hamish. How is Hamish related to Zoe?",  # the narrator is nobody named
        "I'm Sorry to say that Tom's son Jim left.",  # a capitalised word after "I'm" that is no name
        "This is Mary's house. Mary's son is Tom.",  # "This is" before a possessive introduces nobody
        "Anna is Tom's mother. How is Anna related to Tom?",
        "Posting here because my aunt Lei sings. How is Lei related to Kai?",  # "X here" says who only alone
        "It's Monday, and my son Tom sings.",  # a day is no name
        "I was raised by Anna. My dad is Tom.",  # "by" after no title is no byline
        "KRAKÓW — Stanisław Nowak, 80, bakes. His son Tom sings. How is Tom related to Stanisław?",  # a dateline
        "Ann - my sister - sings. Tom sings. Who is Ann to Tom?",  # a dash inside the story signs nothing
        "We sang.\nMe, Tom and Ann went to the zoo. My son is Bo. Who is Bo to Tom?",  # "Me, Tom and Ann": a list
        # a name alone on the last line signs only a letter, and a sign-off is followed by the question alone
        "My brother is Tom.\nAnna\n\nWho is Tom to Anna?",
        "Dear all,\nMy son is Tom.\nLove,\nAnna\n\nTom went home. Then my son sang. He sings well. Who is Tom?",
    ],
)
def test_a_story_without_a_named_narrator_is_read_as_written(text):
    assert narrator(text) is None
    assert in_third_person(text) == text


def test_the_narrator_s_words_become_the_name_and_quotes_stay_as_said():
    text = (
        "I'm Grace, and I'm the only one who stayed. My brother Samuel moved away; he calls me often. "
        '"This is my son," Samuel told them. How is Samuel related to me?'
    )
    read = in_third_person(text)
    assert read == (
        "Grace, and Grace is the only one who stayed. Grace's brother Samuel moved away; he calls Grace often. "
        '"This is my son," Samuel told them. How is Samuel related to Grace?'
    )
    assert len(sentence_spans(read)) == len(sentence_spans(text))  # a fact can cite the sentence as written


def test_mine_myself_our_and_contractions_are_the_narrator_s():
    read = in_third_person("My name is Ada. I've a brother, Ben, and I'll visit our mother Cy; the cat is mine.")
    assert read == "Ada. Ada has a brother, Ben, and Ada will visit Ada's mother Cy; the cat is Ada's."


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (
            'Text from Priyanka to her husband Arjun: "Your mum Sunita called. Can you call me?" Who is Sunita to '
            "Priyanka?",
            'Text from Priyanka to her husband Arjun: "Arjun\'s mum Sunita called. Can Arjun call Priyanka?" Who is '
            "Sunita to Priyanka?",
        ),
        (
            'Nadia, texting her big brother Omar: "Your sister Layla says I\'m late." My cat sleeps.',
            'Nadia, texting her big brother Omar: "Omar\'s sister Layla says Nadia is late." My cat sleeps.',
        ),
        (
            'Miguel to his wife Marta: "Hey, your sister Pilar called."',
            'Miguel to his wife Marta: "Hey, Marta\'s sister Pilar called."',
        ),
    ],
)
def test_a_message_s_writer_and_reader_are_its_i_and_you(text, read):
    """Inside a message quoted after who wrote it to whom, "I" is the writer and "you" the reader; outside it
    (and with no named narrator) first-person words stay as written."""
    assert in_third_person(text) == read
    assert len(sentence_spans(in_third_person(text))) == len(sentence_spans(text))


def test_quotes_without_a_writer_and_reader_are_left_as_said():
    text = 'Anna said: "Your son Tom is my nephew." How is Tom related to Anna?'
    assert in_third_person(text) == text


def test_a_megabyte_of_dashes_and_names_is_read_in_linear_time():
    """Signatures are looked for at the end only: looked for everywhere, 88 kB of "- Anna Bob" took 2 s and a
    megabyte would take minutes."""
    import time

    started = time.perf_counter()
    assert in_third_person("- Anna Bob " * 100_000).startswith("- Anna Bob")
    assert time.perf_counter() - started < 5
    # a megabyte of chat among 5,000 people: who a line calls by name is looked up, not searched for by each
    # speaker in turn (which would take hours)
    names = ["".join(chr(97 + (k // 26**p) % 26) for p in range(4)).capitalize() + "o" for k in range(5000)]
    chat = "\n".join(f"{names[k % 5000]}: you are my friend, {names[(k * 7) % 5000]}" for k in range(30_000))
    started = time.perf_counter()
    assert f"\n{names[1]}: {names[7]} is {names[1]}'s friend, {names[7]}\n" in in_third_person(chat)
    assert time.perf_counter() - started < 20


def test_titles_the_narrator_calls_relatives_by_are_the_narrator_s():
    """With the manifest's titles, "Mom (Claire) says" in Noah's story is Noah's mom; a title with someone's
    before it, inside quotes, in a longer word, or in a story with no named narrator stays as written."""
    titles = ("mom", "dad", "grandma")
    text = "I'm Ann. Mom and Dad met Grandma Rose. My Mom sings. \"Mom!\" Tom's Dad left. The Dad jokes. Momentum."
    assert in_third_person(text, titles) == (
        "Ann. Ann's mom and Ann's dad met Ann's grandma Rose. Ann's Mom sings. \"Mom!\" Tom's Dad left. "
        "The Dad jokes. Momentum."
    )
    assert (
        in_third_person("Mom met Dad. How is Dad related to Mom?", titles) == "Mom met Dad. How is Dad related to Mom?"
    )
    assert in_third_person(text) == in_third_person(text, ())  # no titles: the words stay


def test_a_chat_line_s_i_is_its_speaker_and_its_you_the_one_it_calls_or_who_spoke_before():
    """In a chat or a transcript ("Malia: ..." lines of two people or more), "I", "my" and "our" are the line's
    speaker; "you" is the one the line calls by name, else the last other one who spoke; the question after it
    and a single "Edit:" line are read as written."""
    text = (
        "Family group chat, Saturday night.\n"
        "Malia: who's bringing the poke tomorrow\n"
        "Keoni: not me, ask Leilani\n"
        "Malia: Keoni you're my little brother, just do it\n"
        "Leilani: lol. Keoni is MY brother too. our brother Kai said he'd bring it\n"
        "Kai: why are you asking me? my son Makoa is coming\n"
        "What is Makoa to Malia?"
    )
    assert in_third_person(text) == (
        "Family group chat, Saturday night.\n"
        "Malia: who's bringing the poke tomorrow\n"
        "Keoni: not Keoni, ask Leilani\n"
        "Malia: Keoni is Malia's little brother, just do it\n"
        "Leilani: lol. Keoni is Leilani's brother too. Leilani's brother Kai said he'd bring it\n"
        "Kai: why are Leilani asking Kai? Kai's son Makoa is coming\n"
        "What is Makoa to Malia?"
    )
    assert len(sentence_spans(in_third_person(text))) == len(sentence_spans(text))
    post = "Anna is my sister.\nEdit: my brother Tom too. Who is Tom to Anna?"
    assert in_third_person(post) == post


def test_a_letter_s_you_is_its_reader_and_a_salutation_s_word_is_the_writer_s():
    """ "Dear brother Samuel" in Miriam's letter: Samuel is Miriam's brother, and "you" is Samuel; an email's
    "To:" header, or "(Sent to Thandi.)", names the reader too; "Dear all" names no one."""
    text = "Dear brother Samuel,\nYou know my sister Esther.\nYour loving Miriam\n\nWhat is Tova to you?"
    assert in_third_person(text) == (
        "Dear Miriam's brother Samuel,\nSamuel know Miriam's sister Esther.\nSamuel's loving Miriam\n\n"
        "What is Tova to Samuel?"
    )
    assert reader("From: Kate\nTo: Ann\nHi, your son Tom sings.")[0] == "Ann"
    assert reader("Hey sis, Lindiwe sings.\nSipho\n\n(Sent to Thandi.) What is Themba to Thandi?")[0] == "Thandi"
    assert reader("Dear all, your son Tom sings.") is None
    assert reader("Dear Mrs. Lindqvist, your son Tom sings.") is None


def test_a_chat_s_you_is_who_a_sentence_calls_by_name_or_the_next_to_speak():
    chat = "Tomás: babe ur mum just called me??\nLucía: omg. Tomás u r her favourite\nRen: it was Yui"
    assert in_third_person(chat) == (
        "Tomás: babe Lucía's mum just called Tomás??\nLucía: omg. Tomás is her favourite\nRen: it was Yui"
    )


def test_an_interview_s_answers_are_the_interviewee_s_and_its_questions_you_them():
    text = (
        "Q: Please tell us your name.\nA: Grace Atieno.\nQ: Can you tell me about your father?\n"
        "A: My father was Ignatius. His son Samuel was born after me.\n\nHow is Samuel related to Grace?"
    )
    assert in_third_person(text) == (
        "Q: Please tell us Grace's name.\nGrace: Grace Atieno.\nQ: Can Grace tell me about Grace's father?\n"
        "Grace: Grace's father was Ignatius. His son Samuel was born after Grace.\n\nHow is Samuel related to Grace?"
    )
    headed = "Interview with Mrs. Chiyo Sato.\nQ: Your son?\nA: Yes, my son Hiroshi.\nQ: And?\nA: Hiroshi's boy Takumi."
    assert "Chiyo: Yes, Chiyo's son Hiroshi." in in_third_person(headed)
    # without a named interviewee, or with one "A:" line, nothing changes
    for text in ("Q: Your son?\nA: My son Hiroshi.\nQ: And?\nA: My boy.", "Q: Name?\nA: Ann.\nQ: Son?\nB: my son."):
        assert in_third_person(text) == text


def test_a_voice_message_is_its_caller_s_words_to_the_one_it_calls():
    text = (
        "[Voicemail]\n\"Hey Chloe, it's Josh - your brother. I'm at my dad Steve's place.\"\n\nWho is Steve to Chloe?"
    )
    assert in_third_person(text) == (
        "[Voicemail]\n\"Hey Chloe, it's Josh - Chloe's brother. Josh is at Josh's dad Steve's place.\"\n\n"
        "Who is Steve to Chloe?"
    )
    # a quotation followed by more story is speech in a story, read as written
    told = '"Hey Chloe, it\'s Josh, my dad Steve called," he said. Then Ann sang. Tom sang. Who is Steve to Ann?'
    assert in_third_person(told) == told

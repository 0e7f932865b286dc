"""The words `describe` ranks against an image, by kind: what it is made with, its style, its light,
and the composition and finish words a prompt adds last. Phrases an SDXL prompt uses as they stand."""

from __future__ import annotations

MEDIUMS = (
    "a photograph", "a cinematic film still", "a digital painting", "an oil painting", "a watercolor painting",
    "a pencil sketch", "a charcoal drawing", "an ink drawing", "a comic book panel", "an anime illustration",
    "a 3d render", "a vintage travel poster", "a screen print", "a linocut print", "a pastel drawing",
    "a gouache painting", "an acrylic painting", "a matte painting", "concept art", "a storyboard frame",
    "a polaroid photo", "a black and white photograph", "a vector illustration", "a children's book illustration",
    "a stained glass window", "a mosaic", "pixel art", "a claymation still", "a papercut collage",
)  # fmt: skip

STYLES = (
    "film noir", "impressionism", "expressionism", "art nouveau", "art deco", "romanticism", "realism",
    "photorealism", "surrealism", "minimalism", "pop art", "ukiyo-e", "gothic", "baroque", "cyberpunk",
    "steampunk", "retro futurism", "mid-century modern", "bauhaus", "graphic novel style", "studio ghibli style",
    "pre-raphaelite", "hudson river school", "tonalism", "luminism", "magic realism", "dark fantasy",
    "maritime painting", "folk art", "brutalism",
)  # fmt: skip

LIGHTING = (
    "golden hour light", "blue hour", "moonlight", "candlelight", "lamplight", "neon lighting", "overcast light",
    "harsh midday sun", "backlit silhouette", "rim lighting", "volumetric light", "god rays", "low-key lighting",
    "high-key lighting", "chiaroscuro", "soft diffused light", "stormy light", "foggy atmosphere",
    "dramatic lighting", "studio lighting", "firelight", "lightning flash", "twilight glow", "sunrise light",
    "hazy sunlight",
)  # fmt: skip

FLAVORS = (
    "wide shot", "close-up", "medium shot", "aerial view", "low angle", "high angle", "symmetrical composition",
    "rule of thirds", "shallow depth of field", "bokeh", "long exposure", "motion blur", "film grain",
    "highly detailed", "intricate detail", "sharp focus", "muted colors", "vivid colors", "monochrome",
    "teal and orange", "pastel colors", "earthy tones", "high contrast", "soft focus", "wet reflections",
    "rain", "mist", "snow", "windswept", "epic scale", "intimate", "melancholic", "eerie", "serene", "tense",
)  # fmt: skip

KINDS: dict[str, tuple[str, ...]] = {"medium": MEDIUMS, "style": STYLES, "lighting": LIGHTING, "flavor": FLAVORS}

// Typesets the formulas that pymdownx.arithmatex leaves as \( ... \) (inline) and \[ ... \] (display) in
// .arithmatex elements, with the KaTeX files that the site serves itself (vendor/katex/): no request leaves it.
document$.subscribe(({ body }) => {
  for (const element of body.querySelectorAll(".arithmatex")) {
    const tex = element.textContent.trim();
    katex.render(tex.slice(2, -2), element, { displayMode: tex.startsWith("\\["), throwOnError: false });
  }
});

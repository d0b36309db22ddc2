// The result page's "Copy prompt" button: copies its data-copy text exactly.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
      button.textContent = "Copied";
      button.dataset.copied = "yes";
    } catch {
      button.textContent = "Select the prompt to copy it";
    }
    setTimeout(() => { button.textContent = label; }, 1500);
  });
}

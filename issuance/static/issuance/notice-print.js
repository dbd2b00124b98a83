// The notice's 「印刷する」 button (no inline script: the Content-Security-Policy forbids it).
document.getElementById("kn-print")?.addEventListener("click", () => window.print());

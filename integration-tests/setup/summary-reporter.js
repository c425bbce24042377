// Prints the plain closing line `N passed, N failed[, N skipped]` that CI reads
// (jest's own summary is not in a format CI recognises).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests
    const failed = results.numFailedTests + results.numRuntimeErrorTestSuites
    process.stdout.write(
      `\n${results.numPassedTests} passed, ${failed} failed` +
        (skipped ? `, ${skipped} skipped` : "") +
        "\n"
    )
  }
}

module.exports = SummaryReporter

using QubesWeb.Data.Qubes;

namespace QubesWeb.Services;

/// <summary>Files the user names on dom0's disk for the console to read (an image to import, an installer's ISO).</summary>
public static class HostFiles
{
    /// <summary>
    /// The full path of an existing file outside the pool, or a refusal that says what to fix. The pool holds only the
    /// qubes' own volumes, which the console opens by their rules (chains, locks), never as a file from outside.
    /// </summary>
    /// <param name="what">What the file is, in the messages ("image", "ISO").</param>
    /// <param name="example">A full path to show in the message for an empty field.</param>
    /// <param name="elsewhere">What to do instead when the file is in the pool.</param>
    public static string Validate(string? input, string poolDir, string what, string example, string elsewhere)
    {
        var path = input?.Trim() ?? "";
        if (path.Length == 0)
            throw new QubeRuleException($"Give the {what} file's full path on dom0, e.g. {example}.");
        if (path.Length > 4096 || path.Any(char.IsControl))
            throw new QubeRuleException($"The {what} path has control characters or is too long; give a plain absolute path.");
        if (!Path.IsPathFullyQualified(path))
            throw new QubeRuleException($"'{QubeRules.Shown(path)}' is not an absolute path; give the {what}'s full path, starting with /.");
        path = Path.GetFullPath(path);
        if (Directory.Exists(path))
            throw new QubeRuleException($"{path} is a folder; give the {what} file in it.");
        if (!File.Exists(path))
            throw new QubeRuleException($"There is no file {path}.");
        // A link is judged by what it points to.
        var real = new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        var pool = Path.TrimEndingDirectorySeparator(Path.GetFullPath(poolDir)) + Path.DirectorySeparatorChar;
        if (real.StartsWith(pool, StringComparison.Ordinal))
            throw new QubeRuleException($"{path} is in the console's pool; {elsewhere}.");
        return path;
    }
}

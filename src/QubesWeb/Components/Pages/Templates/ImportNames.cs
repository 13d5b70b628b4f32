using System.Text;
using QubesWeb.Data.Qubes;

namespace QubesWeb.Components.Pages.Templates;

/// <summary>The name the import page offers for an image: its file name's stem made into a valid, unused qube name.</summary>
public static class ImportNames
{
    /// <summary>debian-12-genericcloud-amd64.qcow2: "debian-12-genericcloud-amd64"; null when nothing usable is left.</summary>
    public static string? Suggest(string fileName, IReadOnlySet<string> existing)
    {
        var stem = fileName;
        foreach (var ext in new[] { ".qcow2", ".img", ".raw" })
            if (stem.EndsWith(ext, StringComparison.OrdinalIgnoreCase)) stem = stem[..^ext.Length];
        var b = new StringBuilder();
        foreach (var c in stem)
            b.Append(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '-');
        var name = b.ToString().TrimStart('-', '_', '.', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9');
        if (name.Length > 31) name = name[..31];
        name = name.TrimEnd('-', '.', '_');
        if (name.Length == 0 || QubeRules.NameProblems(name).Count > 0) return null;
        if (!existing.Contains(name)) return name;
        for (var i = 2; i < 100; i++)
        {
            var suffix = $"-{i}";
            var candidate = (name.Length + suffix.Length > 31 ? name[..(31 - suffix.Length)] : name) + suffix;
            if (!existing.Contains(candidate)) return candidate;
        }
        return null;
    }
}

using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace QubesWeb.Data.Qubes;

/// <summary>A Qubes rule was broken; the message says which one and what to fix.</summary>
public sealed class QubeRuleException(string message) : RefusalException(message)
{
    /// <summary>The one way to say a named qube does not exist; <paramref name="role"/> says what it was wanted for.</summary>
    public static QubeRuleException NoQube(string? name, string? role = null) =>
        new($"There is no qube named '{QubeRules.Shown(name)}'{(role is null ? "" : " " + role)}.");
}

/// <summary>
/// Qubes' rules for qubes, held here so that every entry point (forms, jobs, the demo, tests) obeys them, not only
/// the forms. Sources: core-admin qubes/vm/__init__.py (validate_name), qubes/vm/appvm.py, qubes/vm/templatevm.py.
/// </summary>
public static partial class QubeRules
{
    public const int MaxNameLength = 31;
    public const int DefaultMemoryMiB = 400;
    public const int DefaultVCpus = 2;
    public const int MinMemoryMiB = 128;
    public const int MaxMemoryMiB = 1024 * 1024;
    public const int MaxVCpus = 256;
    public const int MaxNotesLength = 64 * 1024;
    public const string AdminVmName = "dom0";

    private static readonly string[] Reserved = ["Domain-0", "none", "default"];

    [GeneratedRegex(@"\A[a-zA-Z][a-zA-Z0-9_.-]*\z")]
    private static partial Regex NamePattern();

    /// <summary>Every rule <paramref name="name"/> breaks, each said in words; empty when the name is valid.</summary>
    public static IReadOnlyList<string> NameProblems(string? name)
    {
        var problems = new List<string>();
        if (string.IsNullOrEmpty(name))
        {
            problems.Add("A name is required.");
            return problems;
        }
        if (name.Length > MaxNameLength)
            problems.Add($"A name has at most {MaxNameLength} characters; this one has {name.Length}.");
        if (!char.IsAsciiLetter(name[0]))
            problems.Add("A name must start with a letter (a-z or A-Z).");
        var bad = name.Where(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')).Distinct().ToList();
        if (bad.Count > 0)
            problems.Add("A name may contain only letters, digits, '_', '.' and '-'; not " +
                         string.Join(", ", bad.Take(5).Select(Describe)) + (bad.Count > 5 ? ", ..." : "") + ".");
        if (Reserved.Contains(name, StringComparer.Ordinal))
            problems.Add($"'{name}' is reserved.");
        if (name.EndsWith("-dm", StringComparison.Ordinal))
            problems.Add("A name must not end in '-dm' (reserved for device-model stubdomains).");
        // The pattern is the authority; the sentences above explain it. They must agree.
        if (problems.Count == 0 && !NamePattern().IsMatch(name))
            problems.Add("A name must match [a-zA-Z][a-zA-Z0-9_.-]*.");
        return problems;
    }

    /// <summary>Throws <see cref="QubeRuleException"/> naming every broken rule.</summary>
    public static void ValidateName(string? name)
    {
        var problems = NameProblems(name);
        if (problems.Count > 0)
            throw new QubeRuleException($"Invalid name {Quote(name)}: {string.Join(" ", problems)}");
    }

    public static void ValidateResources(int memoryMiB, int vcpus)
    {
        if (memoryMiB < MinMemoryMiB || memoryMiB > MaxMemoryMiB)
            throw new QubeRuleException($"Memory must be between {MinMemoryMiB} and {MaxMemoryMiB} MiB; {memoryMiB} was given.");
        if (vcpus < 1 || vcpus > MaxVCpus)
            throw new QubeRuleException($"VCPUs must be between 1 and {MaxVCpus}; {vcpus} was given.");
    }

    public static void ValidateNotes(string? notes)
    {
        if (notes is not null && notes.Length > MaxNotesLength)
            throw new QubeRuleException($"Notes have at most {MaxNotesLength} characters; these have {notes.Length}.");
        if (notes is not null && notes.Any(c => char.IsControl(c) && c is not '\n' and not '\r' and not '\t'))
            throw new QubeRuleException("Notes may not contain control characters.");
        if (InvisibleFormatProblem(notes, "Notes") is { } problem)
            throw new QubeRuleException(problem);
    }

    /// <summary>
    /// Why <paramref name="text"/> may not be shown, or null: it holds an invisible format character (Unicode
    /// category Cf: the bidirectional overrides and isolates U+202A-202E and U+2066-2069, the zero-width U+200B-200F,
    /// U+FEFF, and the rest). They are refused rather than stripped, as the user typed them (or pasted them) and
    /// should see what changes: shown beside a qube, "vault\u202Egpj.exe" reads as "vaultexe.jpg", and a note can
    /// make one name look like another. <paramref name="what"/> starts the sentence ("Notes", "A feature value").
    /// </summary>
    public static string? InvisibleFormatProblem(string? text, string what)
    {
        if (string.IsNullOrEmpty(text)) return null;
        var found = new List<(Rune Rune, int Index)>();
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(rune) == UnicodeCategory.Format && found.All(f => f.Rune != rune)) found.Add((rune, index));
            index += rune.Utf16SequenceLength;
        }
        if (found.Count == 0) return null;
        var listed = string.Join(", ", found.Take(5).Select(f => $"U+{f.Rune.Value:X4}{FormatCharacterName(f.Rune.Value)} at character {f.Index + 1}"));
        return $"{what} may not contain invisible formatting characters, which can make text and qube names display as something " +
               $"they are not; remove {listed}{(found.Count > 5 ? ", ..." : "")}.";
    }

    private static string FormatCharacterName(int c) => c switch
    {
        0x200B => " (zero width space)",
        0x200C => " (zero width non-joiner)",
        0x200D => " (zero width joiner)",
        0x200E => " (left-to-right mark)",
        0x200F => " (right-to-left mark)",
        0x202A => " (left-to-right embedding)",
        0x202B => " (right-to-left embedding)",
        0x202C => " (pop directional formatting)",
        0x202D => " (left-to-right override)",
        0x202E => " (right-to-left override)",
        0x2066 => " (left-to-right isolate)",
        0x2067 => " (right-to-left isolate)",
        0x2068 => " (first strong isolate)",
        0x2069 => " (pop directional isolate)",
        0xFEFF => " (zero width no-break space)",
        _ => "",
    };

    /// <summary>The template rules: which classes have one, of which class (with its features loaded), and when it may change.</summary>
    public static void ValidateTemplate(QubeClass qubeClass, Qube? template)
    {
        switch (qubeClass)
        {
            case QubeClass.AppVM:
                if (template is null)
                    throw new QubeRuleException("An AppVM needs a template: choose a TemplateVM.");
                if (template.Class != QubeClass.TemplateVM)
                    throw new QubeRuleException($"'{template.Name}' is {Article(template.Class)}; an AppVM's template must be a TemplateVM.");
                break;
            case QubeClass.DispVM:
                if (template is null)
                    throw new QubeRuleException("A DispVM needs an AppVM as its template.");
                if (template.Class != QubeClass.AppVM)
                    throw new QubeRuleException($"'{template.Name}' is {Article(template.Class)}; a DispVM's template must be an AppVM.");
                if (!template.IsDisposableTemplate)
                    throw new QubeRuleException($"'{template.Name}' is not a disposable template; turn on \"Disposable template\" on its page first (Qubes' template_for_dispvms).");
                break;
            default:
                if (template is not null)
                    throw new QubeRuleException($"{Capitalized(Article(qubeClass))} has no template; remove '{template.Name}'.");
                break;
        }
    }

    /// <summary>Why a template is offered no netvm (Qubes keeps templates offline), said where a netvm would be chosen.</summary>
    public const string TemplatesOffline = "A template has no netvm: templates are kept offline, as in Qubes, because every qube based on one trusts it.";

    /// <summary>
    /// Refuses a netvm that <paramref name="name"/>, of <paramref name="qubeClass"/>, may not have: a qube that provides
    /// no network, or any netvm for a template.
    /// </summary>
    public static void ValidateNetVm(string name, QubeClass qubeClass, Qube? netvm)
    {
        if (netvm is null) return;
        if (qubeClass == QubeClass.TemplateVM)
            throw new QubeRuleException(TemplatesOffline + " Leave its netvm at none.");
        if (!netvm.ProvidesNetwork)
            throw new QubeRuleException($"'{netvm.Name}' does not provide network; choose a qube with provides_network set, or none.");
        if (netvm.Name == name)
            throw new QubeRuleException("A qube cannot be its own netvm.");
    }

    /// <inheritdoc cref="ValidateNetVm(string, QubeClass, Qube?)"/>
    public static void ValidateNetVm(Qube qube, Qube? netvm)
    {
        ValidateNetVm(qube.Name, qube.Class, netvm);
        if (netvm is null) return;
        // A loop (a -> b -> a) would leave both without network.
        for (var hop = netvm.NetVm; hop is not null; hop = hop.NetVm)
            if (hop.Name == qube.Name)
                throw new QubeRuleException($"'{netvm.Name}' reaches the network through '{qube.Name}': that would be a loop.");
    }

    /// <summary>The UpdateVM of a template that names none, as Qubes' default policy sends qubes.UpdatesProxy to sys-net.</summary>
    public const string DefaultUpdateVm = "sys-net";

    /// <summary>The port of the updates proxy in an UpdateVM, Qubes' (qubes-updates-proxy, tinyproxy on 8082).</summary>
    public const int UpdatesProxyPort = 8082;

    /// <summary>Refuses an UpdateVM a template cannot use: only a template has one, and it must provide network.</summary>
    public static void ValidateUpdateVm(Qube qube, Qube? updateVm)
    {
        if (updateVm is null) return;
        if (qube.Class != QubeClass.TemplateVM)
            throw new QubeRuleException($"Only a template has an UpdateVM; '{qube.Name}' is {Article(qube.Class)}, which updates through its own netvm.");
        if (!updateVm.ProvidesNetwork || updateVm.Class is QubeClass.TemplateVM or QubeClass.AdminVM)
            throw new QubeRuleException($"'{updateVm.Name}' does not provide network, so it runs no updates proxy; choose a qube with provides_network set.");
    }

    public static void EnsureNotAdminVm(Qube qube) => EnsureNotAdminVm(qube.Name, qube.Class);

    public static void EnsureNotAdminVm(string name, QubeClass qubeClass)
    {
        if (qubeClass == QubeClass.AdminVM)
            throw new QubeRuleException($"'{name}' is the admin qube and is read-only.");
    }

    /// <summary>"an AppVM", "a TemplateVM": messages read as sentences.</summary>
    public static string Article(QubeClass c) => (c is QubeClass.AppVM or QubeClass.AdminVM ? "an " : "a ") + c;

    private static string Capitalized(string s) => char.ToUpperInvariant(s[0]) + s[1..];

    private static string Describe(char c) => c switch
    {
        ' ' => "spaces",
        '\0' => "NUL",
        _ when char.IsControl(c) || char.IsWhiteSpace(c) || c > '~' => $"U+{(int)c:X4}",
        _ => $"'{c}'",
    };

    private static string Quote(string? s) => s is null ? "(none)" : $"'{Shown(s)}'";

    /// <summary>
    /// A user-supplied string made safe to quote in a message: control and invisible format characters become '?',
    /// and it is cut at 40 characters, so a refusal can neither hide nor flood what it quotes.
    /// </summary>
    public static string Shown(string? s) =>
        s is null ? "" : new string(s.Take(40).Select(c => char.IsControl(c) || char.GetUnicodeCategory(c) == UnicodeCategory.Format ? '?' : c).ToArray()) + (s.Length > 40 ? "..." : "");
}

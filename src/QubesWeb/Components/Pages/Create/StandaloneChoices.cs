using QubesWeb.Services;
using QubesWeb.Data.Qubes;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Components.Pages.Create;

/// <summary>What a source template gives the wizard's defaults: its memory, VCPUs and the size of its root.</summary>
public sealed record SourceDefaults(string Name, int MemoryMiB, int VCpus, long RootVirtualSizeBytes);

/// <summary>One field the wizard found wrong, with the sentence that says why.</summary>
public sealed record ChoiceProblem(StandaloneChoices.Field Field, string Text);

/// <summary>
/// Every choice of the standalone wizard, kept across its steps. A purpose presets label, resources, netvm and notes,
/// and the source gives the template's defaults; both apply only to the fields the user has not set himself, so going
/// back to change the purpose or the source never undoes an edit (Qubes' create dialog resets choices, qubes-issues
/// #5902). No UI here: the page shows it, the tests can reason about it.
/// </summary>
public sealed class StandaloneChoices
{
    public const long GiB = 1L << 30;
    public const int DefaultPrivateGiB = (int)(CloneQubeJob.DefaultPrivateSize / GiB);
    public const int EmptyRootGiB = (int)(CloneQubeJob.DefaultRootSize / GiB);
    public const int DevelopmentRootGiB = 20;
    public const int DevelopmentMemoryMiB = 4000;
    public const int UntrustedMemoryMiB = 2000;
    public const int MaxVolumeGiB = (int)(CloneQubeJob.MaxVolumeSize / GiB);
    public const string UntrustedNotes = "Untrusted software: do not put secrets here.";

    /// <summary>The fields a preset may fill.</summary>
    public enum Field
    {
        Label,
        Memory,
        VCpus,
        NetVm,
        Root,
        Private,
        Notes,
    }

    private readonly HashSet<Field> _touched = [];
    private SourceDefaults? _source;
    private string? _defaultNetVm;

    public StandalonePurpose? Purpose { get; private set; }

    /// <summary>Whether a source was chosen: a template (<see cref="Source"/>) or an empty root (<see cref="Source"/> null).</summary>
    public bool SourceChosen { get; private set; }

    public string? Source { get; private set; }
    public string Name { get; set; } = "";
    public string Label { get; private set; } = "purple";
    public int MemoryMiB { get; private set; } = QubeRules.DefaultMemoryMiB;
    public int VCpus { get; private set; } = QubeRules.DefaultVCpus;
    public string? NetVm { get; private set; }
    public int RootGiB { get; private set; } = EmptyRootGiB;
    public int PrivateGiB { get; private set; } = DefaultPrivateGiB;
    public bool CopyPrivate { get; set; }
    public string Notes { get; private set; } = "";

    /// <summary>With an empty root: the installer's ISO file on dom0's disk, or null to attach one later on its page.</summary>
    public string? InstallMedia { get; set; }

    /// <summary>Whether the user set <paramref name="field"/> himself (a preset then leaves it alone).</summary>
    public bool IsTouched(Field field) => _touched.Contains(field);

    public void SetLabel(string label) => Touch(Field.Label, () => Label = label);
    public void SetMemory(int mib) => Touch(Field.Memory, () => MemoryMiB = mib);
    public void SetVCpus(int vcpus) => Touch(Field.VCpus, () => VCpus = vcpus);
    public void SetNetVm(string? netvm) => Touch(Field.NetVm, () => NetVm = string.IsNullOrEmpty(netvm) ? null : netvm);
    public void SetRootGiB(int gib) => Touch(Field.Root, () => RootGiB = gib);
    public void SetPrivateGiB(int gib) => Touch(Field.Private, () => PrivateGiB = gib);
    public void SetNotes(string? notes) => Touch(Field.Notes, () => Notes = notes ?? "");

    private void Touch(Field field, Action set)
    {
        _touched.Add(field);
        set();
    }

    /// <param name="defaultNetVm">Qubes' default netvm here (sys-firewall when there is one), or null for none.</param>
    public void ChoosePurpose(StandalonePurpose purpose, string? defaultNetVm)
    {
        Purpose = purpose;
        _defaultNetVm = defaultNetVm;
        ApplyPresets();
    }

    /// <param name="source">The template's defaults, or null for an empty root.</param>
    public void ChooseSource(SourceDefaults? source, string? defaultNetVm)
    {
        SourceChosen = true;
        Source = source?.Name;
        _source = source;
        _defaultNetVm = defaultNetVm;
        if (source is null) CopyPrivate = false;
        ApplyPresets();
    }

    /// <summary>The smallest root the source allows, in whole GiB (the copy is never smaller than its source).</summary>
    public static int MinRootGiB(SourceDefaults? source) =>
        source is null ? 1 : (int)Math.Max(1, (source.RootVirtualSizeBytes + GiB - 1) / GiB);

    /// <summary>The purpose's preset, and the source's defaults, for every field the user has not set.</summary>
    private void ApplyPresets()
    {
        var minRoot = MinRootGiB(_source);
        var sourceRoot = _source is null ? EmptyRootGiB : minRoot;
        var (label, memory, vcpus, root, notes) = Purpose switch
        {
            StandalonePurpose.Development => ("orange", DevelopmentMemoryMiB, 2, Math.Max(DevelopmentRootGiB, minRoot), ""),
            StandalonePurpose.Untrusted => ("red", UntrustedMemoryMiB, 2, sourceRoot, UntrustedNotes),
            _ => ("purple", _source?.MemoryMiB ?? QubeRules.DefaultMemoryMiB, _source?.VCpus ?? QubeRules.DefaultVCpus, sourceRoot, ""),
        };
        if (!IsTouched(Field.Label)) Label = label;
        if (!IsTouched(Field.Memory)) MemoryMiB = memory;
        if (!IsTouched(Field.VCpus)) VCpus = vcpus;
        if (!IsTouched(Field.Root)) RootGiB = root;
        if (!IsTouched(Field.Notes)) Notes = notes;
        if (!IsTouched(Field.NetVm)) NetVm = _defaultNetVm;
    }

    /// <summary>Qubes' default netvm: the firewall when there is one, else the first qube that provides network.</summary>
    public static string? DefaultNetVm(IReadOnlyCollection<string> netvms) =>
        netvms.Contains("sys-firewall") ? "sys-firewall" : netvms.FirstOrDefault();

    /// <summary>
    /// Every resource the job would refuse, each said in words: memory, VCPUs, the root against its source, the
    /// private volume, and a netvm that is gone.
    /// </summary>
    public List<ChoiceProblem> ResourceProblems(SourceDefaults? source, IReadOnlyCollection<string> netvms)
    {
        var problems = new List<ChoiceProblem>();
        if (MemoryMiB < QubeRules.MinMemoryMiB || MemoryMiB > QubeRules.MaxMemoryMiB)
            problems.Add(new(Field.Memory, $"Memory must be between {QubeRules.MinMemoryMiB} and {QubeRules.MaxMemoryMiB} MiB; {MemoryMiB} was given."));
        if (VCpus < 1 || VCpus > QubeRules.MaxVCpus)
            problems.Add(new(Field.VCpus, $"VCPUs must be between 1 and {QubeRules.MaxVCpus}; {VCpus} was given."));
        var minRoot = MinRootGiB(source);
        if (RootGiB > MaxVolumeGiB)
            problems.Add(new(Field.Root, $"A volume is at most {MaxVolumeGiB} GiB; {RootGiB} GiB was given."));
        else if (source is not null && RootGiB < minRoot)
            problems.Add(new(Field.Root, $"The root cannot be smaller than {Format.Bytes(source.RootVirtualSizeBytes)}, the size of " +
                                         $"{source.Name}'s root: choose {minRoot} GiB or more."));
        else if (RootGiB < 1)
            problems.Add(new(Field.Root, $"The root is at least 1 GiB; {RootGiB} GiB was given."));
        if (PrivateGiB > MaxVolumeGiB)
            problems.Add(new(Field.Private, $"A volume is at most {MaxVolumeGiB} GiB; {PrivateGiB} GiB was given."));
        else if (PrivateGiB < 1)
            problems.Add(new(Field.Private, $"The private volume is at least 1 GiB; {PrivateGiB} GiB was given."));
        if (NetVm is not null && !netvms.Contains(NetVm))
            problems.Add(new(Field.NetVm, $"'{NetVm}' no longer provides network; choose another netvm, or none."));
        return problems;
    }

    /// <summary>
    /// Why the notes would be refused, or null: QubeRules.ValidateNotes itself, so the form cannot fall behind the rule
    /// (a copy of it here missed the invisible format characters, which the job then refused at the last step).
    /// </summary>
    public string? NotesProblem()
    {
        try
        {
            QubeRules.ValidateNotes(Notes);
            return null;
        }
        catch (QubeRuleException e)
        {
            return e.Message;
        }
    }

    /// <summary>The engine's request for these choices (a standalone, whatever the source).</summary>
    public CloneRequest ToRequest() => new(QubeClass.StandaloneVM, Source, Label, NetVm, MemoryMiB, VCpus,
        RootGiB * GiB, PrivateGiB * GiB, CopyPrivate && Source is not null, Notes, Purpose,
        Source is null && !string.IsNullOrWhiteSpace(InstallMedia) ? InstallMedia.Trim() : null);
}

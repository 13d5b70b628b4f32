using System.Globalization;
using Microsoft.AspNetCore.Components;
using QubesWeb.Components.Shared;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;

namespace QubesWeb.Components.Pages.Create;

/// <summary>The standalone wizard's steps, in order.</summary>
public enum WizardStep { Purpose, Source, Identity, Resources, Review, Create }

public partial class StandaloneWizard : LivePage
{
    [Inject] private QubeQueries Inventory { get; set; } = null!;
    [Inject] private QubeCommands Commands { get; set; } = null!;
    [Inject] private TaskCommands TaskCommands { get; set; } = null!;
    [Inject] private CircuitJobs MyJobs { get; set; } = null!;
    [Inject] private NavigationManager Navigation { get; set; } = null!;

    /// <summary>?source=NAME: the template to preselect.</summary>
    [SupplyParameterFromQuery(Name = "source")] public string? SourceQuery { get; set; }

    /// <summary>?purpose=development|untrusted|other: the purpose to preselect.</summary>
    [SupplyParameterFromQuery(Name = "purpose")] public string? PurposeQuery { get; set; }

    private static readonly string[] Titles = ["Purpose", "Source", "Identity", "Resources", "Review", "Create"];

    private readonly StandaloneChoices _c = new();
    private WizardStep _step = WizardStep.Purpose;
    private WizardStep _furthest = WizardStep.Purpose;
    private bool _loaded;
    private List<Label> _labels = [];
    private HashSet<string> _existing = [];
    private List<string> _netvms = [];
    private List<SourceOption> _sources = [];
    private SourceOptions? _sourceOptions;
    private string? _sourceNotice;
    private List<string> _nameProblems = [];
    private bool _nameTouched;
    private ClonePlan? _plan;
    private string? _planError;
    private bool _planning;
    private int _planVersion;
    private string? _createError;
    private bool _busy;
    private long? _jobId;
    private Job? _job;
    private bool _navigated;
    private bool _cancelling;

    protected override async Task OnInitializedAsync()
    {
        await base.OnInitializedAsync();
        ApplyQuery();
    }

    /// <summary>Preselects what the link asked for; a source that cannot be copied is said, not silently dropped.</summary>
    private void ApplyQuery()
    {
        if (!string.IsNullOrEmpty(SourceQuery))
        {
            var option = _sources.FirstOrDefault(s => s.Template.Name == SourceQuery);
            if (option?.Plan is not null) ChooseSource(option);
            else _sourceNotice = option is null
                ? $"'{QubeRules.Shown(SourceQuery)}' is not a template of this console; choose a source below."
                : $"{option.Template.Name} cannot be copied: {option.Problem}";
        }
        if (Enum.TryParse<StandalonePurpose>(PurposeQuery, ignoreCase: true, out var purpose) && Enum.IsDefined(purpose)
            && !int.TryParse(PurposeQuery, out _))
            ChoosePurpose(purpose);
    }

    protected override async Task LoadAsync()
    {
        var qubes = await Inventory.ListAsync();
        if (_labels.Count == 0) _labels = await Inventory.LabelsAsync();
        _existing = qubes.Select(q => q.Name).ToHashSet(StringComparer.Ordinal);
        _netvms = qubes.Where(q => q.ProvidesNetwork).Select(q => q.Name).ToList();
        // qemu-img is asked again only about a template whose current revision changed since the last look.
        _sources = await (_sourceOptions ??= new SourceOptions(Commands)).ListAsync(qubes);
        _nameProblems = NameProblems(_c.Name);
        if (_step == WizardStep.Review && _plan is not null && _c.Source is { } src
            && _sources.FirstOrDefault(s => s.Template.Name == src)?.Plan?.SourceRevision != _plan.SourceRevision)
            _ = PlanAsync(); // the source committed a new revision meanwhile: measure that one
        await RefreshJobAsync();
        _loaded = true;
    }

    // Run states do not change anything this page shows (the connection's state comes with a full push).
    protected override Task<bool> OnStatesChangedAsync() => Task.FromResult(false);

    // Another job's change costs one read of this page's own job, and nothing when it has none.
    protected override Task OnJobsChangedAsync() => RefreshJobAsync();

    private async Task RefreshJobAsync()
    {
        if (_jobId is not { } id) return;
        var job = await Jobs.FindAsync(id);
        if (job is null || _jobId != id) return;
        _job = job;
        if (job.State == JobState.Succeeded && !_navigated)
        {
            _navigated = true;
            Navigation.NavigateTo($"/qubes/{Uri.EscapeDataString(job.Target)}");
        }
    }

    // ---- choices

    private string? DefaultNetVm => StandaloneChoices.DefaultNetVm(_netvms);

    private void ChoosePurpose(StandalonePurpose purpose) => _c.ChoosePurpose(purpose, DefaultNetVm);

    private void ChooseSource(SourceOption option)
    {
        if (option.Defaults is not { } defaults) return;
        _c.ChooseSource(defaults, DefaultNetVm);
        _sourceNotice = null;
    }

    private void ChooseEmpty()
    {
        _c.ChooseSource(null, DefaultNetVm);
        _sourceNotice = null;
    }

    private SourceOption? SelectedOption() =>
        _c.Source is { } name ? _sources.FirstOrDefault(s => s.Template.Name == name) : null;

    private SourceDefaults? SelectedDefaults() => SelectedOption()?.Defaults;

    private void SetName(string? name)
    {
        _c.Name = name ?? "";
        _nameTouched = true;
        _nameProblems = NameProblems(_c.Name);
    }

    // A step changed a choice in place; the callback re-renders this page, so the tabs and Next follow it.
    private static void ChoicesChanged()
    {
    }

    /// <summary>Every rule the name breaks, then whether a qube or a libvirt domain has it already.</summary>
    private List<string> NameProblems(string name)
    {
        var problems = QubeRules.NameProblems(name).ToList();
        if (problems.Count > 0) return problems;
        if (_existing.Contains(name)) problems.Add($"A qube named '{name}' already exists.");
        else if (HasDomain(name)) problems.Add($"libvirt already has a domain named '{name}' that is not a qube of this console.");
        return problems;
    }

    private bool HasDomain(string name) => Inventory.DomainExists(name);

    private List<ChoiceProblem> ResourceProblems() => _c.ResourceProblems(SelectedDefaults(), _netvms);

    private Label? LabelOf(string name) => _labels.FirstOrDefault(l => l.Name == name);

    // ---- steps

    private bool Valid(WizardStep step) => step switch
    {
        WizardStep.Purpose => _c.Purpose is not null,
        WizardStep.Source => _c.SourceChosen && (_c.Source is null || SelectedDefaults() is not null),
        WizardStep.Identity => _nameProblems.Count == 0 && LabelOf(_c.Label) is not null && _c.NotesProblem() is null,
        WizardStep.Resources => ResourceProblems().Count == 0,
        WizardStep.Review => _plan is { Fits: true } && !_planning,
        _ => false,
    };

    private static string? Blocked(WizardStep step) => step switch
    {
        WizardStep.Purpose => "Choose what it is for.",
        WizardStep.Source => "Choose a source.",
        WizardStep.Identity => "Give it a valid name.",
        WizardStep.Resources => "Fix the values marked in red.",
        _ => null,
    };

    /// <summary>Whether every step before <paramref name="step"/> is valid.</summary>
    private bool Reachable(WizardStep step) => Enumerable.Range(0, (int)step).All(i => Valid((WizardStep)i));

    /// <summary>A step can be opened when it was seen (or is the next one) and every step before it is valid; none while the job runs.</summary>
    private bool CanGoTo(WizardStep step) =>
        _loaded && _step != WizardStep.Create && !_busy && step != WizardStep.Create && step <= _furthest + 1 && Reachable(step);

    private bool CanCreate => !_busy && _step == WizardStep.Review && Estate.Connection.IsUp && Reachable(WizardStep.Review) && Valid(WizardStep.Review);

    /// <summary>The tabs: a step is done once seen and valid; Review and Create never ahead of the current step (a fresh measure decides).</summary>
    private List<WizardSteps.Item> StepItems() => Enum.GetValues<WizardStep>().Select(step =>
    {
        var done = step < WizardStep.Review ? step != _step && step <= _furthest && Reachable(step) && Valid(step) : step < _step;
        return new WizardSteps.Item(step, StepName(step), Titles[(int)step], ((int)step + 1).ToString(CultureInfo.InvariantCulture),
            step == _step, done, CanGoTo(step), done ? Summary(step) : null);
    }).ToList();

    private async Task GoToAsync(WizardStep step)
    {
        if (!CanGoTo(step) || step == _step) return;
        _step = step;
        if (step > _furthest) _furthest = step;
        _createError = null;
        if (step == WizardStep.Review) await PlanAsync();
    }

    private Task NextAsync() => Valid(_step) ? GoToAsync(_step + 1) : Task.CompletedTask;

    private Task BackAsync() => _step > WizardStep.Purpose ? GoToAsync(_step - 1) : Task.CompletedTask;

    /// <summary>What the copy will take against the pool's free space, measured for the choices as they are now.</summary>
    private async Task PlanAsync()
    {
        var version = ++_planVersion;
        _plan = null;
        _planError = null;
        _planning = true;
        try
        {
            var plan = await Commands.PlanCloneAsync(_c.ToRequest());
            if (version == _planVersion) _plan = plan;
        }
        catch (RefusalException e)
        {
            if (version == _planVersion) _planError = e.Message;
        }
        finally
        {
            if (version == _planVersion) _planning = false;
        }
        StateHasChanged();
    }

    private async Task CreateAsync()
    {
        if (!CanCreate) return;
        _createError = null;
        _busy = true;
        try
        {
            var job = await Commands.CloneAsync(_c.Name, _c.ToRequest());
            MyJobs.Track(job.Id);
            _jobId = job.Id;
            _job = job;
            _navigated = false;
            _cancelling = false;
            _step = WizardStep.Create;
            // The job may have finished before this page subscribed to its pushes.
            await RefreshJobAsync();
        }
        catch (RefusalException e)
        {
            _createError = e.Message;
            // Another tab may have taken the name: the identity step says so from now on.
            await LoadAsync();
        }
        finally
        {
            _busy = false;
        }
    }

    private async Task CancelAsync()
    {
        if (_jobId is not { } id) return;
        _cancelling = true;
        await TaskCommands.CancelAsync(id);
    }

    private async Task BackFromJobAsync()
    {
        _jobId = null;
        _job = null;
        _step = WizardStep.Review;
        await LoadAsync();
        await PlanAsync();
    }

    // ---- text

    private static string StepName(WizardStep step) => step.ToString().ToLowerInvariant();

    private string? Summary(WizardStep step) => step switch
    {
        WizardStep.Purpose => _c.Purpose?.ToString(),
        WizardStep.Source => !_c.SourceChosen ? null : _c.Source ?? "Empty",
        WizardStep.Identity => string.IsNullOrEmpty(_c.Name) ? null : $"{_c.Name}, {_c.Label}",
        WizardStep.Resources => $"{_c.MemoryMiB} MiB, {_c.RootGiB} GiB",
        _ => null,
    };
}

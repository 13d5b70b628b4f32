using Microsoft.AspNetCore.Components;
using MudBlazor;
using QubesWeb.Components.Shared;
using QubesWeb.Data.Jobs;
using QubesWeb.Data.Qubes;
using QubesWeb.Hypervisor.Domains;
using QubesWeb.Services.Estate;
using QubesWeb.Services.Jobs;
using QubesWeb.Services.Qubes;
using QubesWeb.Services.Templates;

namespace QubesWeb.Components.Pages.Qubes;

public partial class QubeDetail : LivePage
{
    [Inject] private QubeQueries Inventory { get; set; } = null!;
    [Inject] private QubeCommands Commands { get; set; } = null!;
    [Inject] private ISnackbar Snackbar { get; set; } = null!;
    [Inject] private Services.Disposables.DisposableCommands Disposables { get; set; } = null!;
    [Inject] private NavigationManager Navigation { get; set; } = null!;
    [Inject] private Services.Storage.RootDetach Detach { get; set; } = null!;
    [Inject] private Services.Storage.DetachCommands DetachCommands { get; set; } = null!;

    /// <summary>The qube's name, from the address.</summary>
    [Parameter] public string Name { get; set; } = "";

    private bool _loaded;
    private string? _loadedName;
    private Qube? _qube;
    private RunState _state;
    private RootStaleness _staleness;
    private List<Label> _labels = [];
    private List<string> _templates = [];
    private List<string> _netvms = [];
    private List<Job> _jobs = [];
    private string? _defaultDvm;
    private IReadOnlyList<string> _disposables = [];
    private Services.Storage.RootDependency? _dependency;
    private Job? _detachJob;
    private bool _detachBusy;
    private string? _detachError;

    // What the inventory holds, and what the form holds; a live reload never overwrites an edit in progress.
    private QubeDraft? _original;
    private QubeDraft? _draft;
    private string? _error;
    private bool _busy;

    private QubeRemoveDialog? _removeDialog;
    private long? _removeJobId;

    protected override async Task OnParametersSetAsync()
    {
        if (_loadedName == Name) return;
        _draft = null;
        _error = null;
        _removeJobId = null;
        await LoadAsync();
    }

    protected override async Task LoadAsync()
    {
        var name = Name;
        if (_labels.Count == 0) _labels = await Inventory.LabelsAsync();
        var qube = await Inventory.FindWithTemplateAsync(name);
        _templates = await Inventory.TemplateNamesAsync();
        _netvms = await Inventory.NetVmNamesAsync(except: name);
        _jobs = await Jobs.QueryAsync(new JobQuery { Target = name, Take = 10 });
        if (qube?.Class is QubeClass.AppVM or QubeClass.DispVM) (_defaultDvm, _disposables) = await Disposables.OfAsync(name);
        _dependency = qube?.Class is QubeClass.StandaloneVM or QubeClass.TemplateVM ? await Detach.DependencyAsync(name) : null;
        _detachJob = _dependency is null ? null : await DetachCommands.ActiveAsync(name);
        _qube = qube;
        _state = qube is null ? RunState.Unknown : Estate.StateOf(qube);
        _staleness = qube is null ? RootStaleness.Current
            : Outdated.Of(qube, _state, Outdated.CurrentRevisions(Templates(qube)), Estate.StateOf, Outdated.SourcePrivateWrites([qube, .. Templates(qube)]));

        if (qube is not null && qube.Class != QubeClass.AdminVM)
        {
            // An edit in progress keeps the base it was made from: the save sends only what the user changed, so a
            // change someone else made meanwhile (a feature, a property) is kept, not undone by a stale draft.
            var fresh = QubeDraft.From(qube);
            if (_draft is null || _original is null || _draft.SameAs(_original))
            {
                _draft = fresh.Copy();
                _original = fresh;
            }
        }
        else
        {
            _draft = _original = null;
        }
        _loadedName = name;
        _loaded = true;

        if (_removeJobId is { } id && await Jobs.GetAsync(id) is { IsFinished: true } job)
        {
            _removeJobId = null;
            if (job.State == JobState.Succeeded) Navigation.NavigateTo("/qubes");
            else _error = $"Removing {name} {job.State.ToString().ToLowerInvariant()}: {job.Error}";
        }
    }

    /// <summary>The qube's template, and a disposable's template's template (its root's).</summary>
    private static List<Qube> Templates(Qube qube) => new[] { qube.Template, qube.Template?.Template }.OfType<Qube>().ToList();

    private IEnumerable<string> NetVmChoices =>
        _draft is { } d && d.NetVm != QubeDraft.None && !_netvms.Contains(d.NetVm) ? _netvms.Prepend(d.NetVm) : _netvms;

    private IEnumerable<string> TemplateChoices =>
        _draft is { } d && d.Template != QubeDraft.None && !_templates.Contains(d.Template) ? _templates.Prepend(d.Template) : _templates;

    /// <summary>Why the template cannot be changed now, or null when it can (an AppVM, halted).</summary>
    private string? TemplateLockedReason => _qube switch
    {
        null => null,
        { Class: QubeClass.TemplateVM } => "A TemplateVM has no template.",
        { Class: QubeClass.StandaloneVM } => "A StandaloneVM has its own root and no template.",
        { Class: not QubeClass.AppVM } q => $"The console changes the template of AppVMs only; {q.Name} is a {q.Class}.",
        { } q when _state != RunState.Halted => $"{q.Name} is {_state.ToString().ToLowerInvariant()}: its template can change only while it is halted.",
        _ => null,
    };

    private void Discard()
    {
        _draft = _original?.Copy();
        _error = null;
    }

    private async Task SaveAsync()
    {
        if (_qube is null || _draft is null || _original is null) return;
        var d = _draft;
        var o = _original;
        var changes = new QubeChanges(
            Label: d.Label != o.Label ? d.Label : null,
            MemoryMiB: d.MemoryMiB != o.MemoryMiB ? d.MemoryMiB : null,
            VCpus: d.VCpus != o.VCpus ? d.VCpus : null,
            NetVm: d.NetVm != o.NetVm && d.NetVm != QubeDraft.None ? d.NetVm : null,
            ClearNetVm: d.NetVm != o.NetVm && d.NetVm == QubeDraft.None,
            Notes: d.Notes != o.Notes ? d.Notes : null,
            Template: d.Template != o.Template && d.Template != QubeDraft.None ? d.Template : null,
            Features: d.FeatureChangesFrom(o));
        _busy = true;
        _error = null;
        SaveOutcome saved;
        try
        {
            saved = await Commands.SavePropertiesAsync(_qube.Name, changes);
        }
        catch (RefusalException e)
        {
            _error = e.Message;
            _busy = false;
            return;
        }
        // libvirt keeps memory and VCPUs for a running qube's next start.
        var note = (saved.AppliesAtNextStart ? $" Memory and VCPUs apply at {saved.Qube}'s next start." : "")
            + (saved.Network == InterfaceMove.NotSupported ? $" Its network changes at {saved.Qube}'s next start: this libvirt cannot move a running qube's interface." : "")
            + (saved.DomainProblem is null ? "" : $" libvirt did not take the new definition: {saved.DomainProblem}");
        _draft = null; // the reload below takes the saved values
        _busy = false;
        await LoadAsync();
        Snackbar.Add($"Saved {saved.Qube}.{note}", saved.DomainProblem is null ? Severity.Success : Severity.Warning);
    }

    /// <summary>Pauses or resumes the copy that makes the qube independent; a refusal is shown on the card.</summary>
    private async Task DetachAsync(bool pause)
    {
        _detachBusy = true;
        _detachError = null;
        try
        {
            if (pause) await DetachCommands.PauseAsync(Name);
            else await DetachCommands.ResumeAsync(Name);
        }
        catch (RefusalException e)
        {
            _detachError = e.Message;
        }
        finally
        {
            _detachBusy = false;
        }
        await LoadAsync();
    }

    private Task OpenRemoveAsync() => _removeDialog?.OpenAsync() ?? Task.CompletedTask;

    private void RemoveQueued(long jobId) => _removeJobId = jobId;
}

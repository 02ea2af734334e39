from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from relabel_app.selectors import dataset_list_with_counts


@login_required
def home(request):
    return render(request, "review/home.html", {"datasets": dataset_list_with_counts()})
